package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/futex"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/shm"
)

const doctorUsage = `usage: shmchan doctor [-plan CAPxMSG] [-channels N] [-mq] [-prefix P] [NAME...]

Checks this machine for what shmchan needs, and the regions in /dev/shm
(those named, or all of them, or those whose names start with P), and
prints one line per check: ok, note (worth knowing, not wrong) or
PROBLEM, each problem with what to do about it.

  /dev/shm      mounted, a tmpfs, writable, with the sticky bit
  shm-space     its size and free space against the regions named, a
                planned channel (-plan), or else one channel with the
                default options
  container     a container or IPC namespace, and how to share /dev/shm
                (docker --shm-size / --ipc, a Kubernetes emptyDir with
                medium: Memory)
  shm-create    a test object created, mapped, written and removed
  futex         futex wait and wake work on shared memory (a seccomp
                profile can forbid them)
  membarrier    the fast publish path is available
  mqueue        with -mq or a region that waits on message queues: the
                mq limits (msg_max, msgsize_max, queues_max,
                RLIMIT_MSGQUEUE), /dev/mqueue, a test queue
  regions       damaged regions; stale ones (no live role, nobody has
                them open) with the exact 'shmchan rm' line; regions
                owned by another user or open to others; spinning waits
  receivers     each receiver of a work queue (the position it holds,
                what it received) or broadcast (its cursor, how far
                behind it is, whether it holds the senders back)
  doorbells     doorbell queues left behind by a removed region (needs
                /dev/mqueue mounted to list them)

  -plan CAPxMSG  a planned channel: capacity x largest message in bytes
                 (suffixes k, m, g: 64kx256, 1024x4k)
  -channels N    how many planned channels (default 1)
  -mq            check message queues even if no region uses them
  -prefix P      only regions whose names start with P

Examples:
  shmchan doctor
  shmchan doctor -plan 65536x512 -channels 4 -mq
  shmchan doctor orders fills

Exit status: 0 if no problem was found, 1 if one was, 2 for a usage error.
`

type level int

const (
	levelOK level = iota
	levelNote
	levelProblem
)

func (l level) String() string {
	switch l {
	case levelOK:
		return "ok"
	case levelNote:
		return "note"
	}
	return "PROBLEM"
}

type finding struct {
	level level
	check string
	msg   string
	fix   string
}

// doctor collects findings.
type doctor struct {
	w        io.Writer
	found    []finding
	problems int
}

func (d *doctor) add(l level, check, fix, format string, args ...any) {
	f := finding{level: l, check: check, msg: fmt.Sprintf(format, args...), fix: fix}
	d.found = append(d.found, f)
	if l == levelProblem {
		d.problems++
	}
	line := fmt.Sprintf("%-7s  %-10s  %s", f.level, f.check, f.msg)
	if f.fix != "" {
		line += " Fix: " + f.fix
	}
	fmt.Fprintln(d.w, line)
}

type plan struct {
	capacity, maxMsg uint64
	channels         int
}

func runDoctor(args []string) int {
	fset := flag.NewFlagSet("shmchan doctor", flag.ContinueOnError)
	planArg := fset.String("plan", "", "planned channel: CAPxMSG")
	channels := fset.Int("channels", 1, "number of planned channels")
	wantMQ := fset.Bool("mq", false, "check message queues")
	prefix := fset.String("prefix", "", "only regions with this prefix")
	operands, ok, code := parseArgs(fset, args, doctorUsage)
	if !ok {
		return code
	}
	var p *plan
	if *planArg != "" {
		c, m, err := parsePlan(*planArg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "shmchan doctor: -plan %q: %v\n%s", *planArg, err, doctorUsage)
			return 2
		}
		p = &plan{capacity: c, maxMsg: m, channels: *channels}
	}
	if *channels < 1 || *channels > 1<<20 {
		fmt.Fprintf(os.Stderr, "shmchan doctor: -channels must be in [1, %d]\n%s", 1<<20, doctorUsage)
		return 2
	}
	if *prefix != "" && len(operands) > 0 {
		fmt.Fprintf(os.Stderr, "shmchan doctor: -prefix and region names do not go together\n%s", doctorUsage)
		return 2
	}
	d := &doctor{w: os.Stdout}
	d.run(operands, strings.TrimPrefix(*prefix, "/"), p, *wantMQ)
	if d.problems > 0 {
		fmt.Printf("%d problem%s found\n", d.problems, ifThen(d.problems == 1, "", "s"))
		return 1
	}
	fmt.Println("no problems found")
	return 0
}

// parsePlan reads "CAPxMSG" with optional k, m, g suffixes.
func parsePlan(s string) (capacity, maxMsg uint64, err error) {
	c, m, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		return 0, 0, errors.New("want CAPxMSG, e.g. 1024x4k")
	}
	if capacity, err = parseSize(c); err != nil {
		return 0, 0, fmt.Errorf("capacity: %w", err)
	}
	if maxMsg, err = parseSize(m); err != nil {
		return 0, 0, fmt.Errorf("message size: %w", err)
	}
	if capacity < 1 || capacity > layout.MaxCapacity {
		return 0, 0, fmt.Errorf("capacity %d not in [1, %d]", capacity, layout.MaxCapacity)
	}
	if maxMsg < 1 || maxMsg > layout.MaxMsg {
		return 0, 0, fmt.Errorf("message size %d not in [1, %d]", maxMsg, layout.MaxMsg)
	}
	return capacity, maxMsg, nil
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v * mult, nil
}

// regionBytes is the size of a region: SPSC, capacity rounded up to a
// power of two.
func regionBytes(capacity, maxMsg uint64) (int64, error) {
	c := uint64(1)
	for c < capacity {
		c <<= 1
	}
	h := layout.Header{Mode: layout.ModeSPSC, Producers: 1, Capacity: c, MaxMsg: uint32(maxMsg)}
	if err := h.Geometry(); err != nil {
		return 0, err
	}
	return int64(h.TotalSize), nil
}

const shmFix = "give /dev/shm more room: docker run --shm-size=1g (or --ipc=host to use the host's); " +
	"Kubernetes: mount an emptyDir {medium: Memory, sizeLimit: 1Gi} at /dev/shm; " +
	"a host: mount -o remount,size=50% /dev/shm (or set it in /etc/fstab)."

func (d *doctor) run(names []string, prefix string, p *plan, wantMQ bool) {
	fi, fsOK := d.checkMount()
	regions, missing := loadRegions(names, prefix)
	if fsOK {
		d.checkSpace(fi, names, regions, p)
	}
	d.checkContainer(fi, fsOK)
	shmErr, futexErr := probeShm()
	if shmErr != nil {
		d.add(levelProblem, "shm-create", "check that /dev/shm is a writable tmpfs with mode 1777 and has free space.",
			"could not create, map and remove a test object: %v.", shmErr)
	} else {
		d.add(levelOK, "shm-create", "", "created, mapped, wrote and removed a test object.")
	}
	if futexErr != nil {
		d.add(levelProblem, "futex", "allow futex(2) in the seccomp profile (Docker's default allows it); "+
			"or create channels with shmchan.WithWait(shmchan.WaitMQ) or WaitSpin.",
			"futex does not work on shared memory: %v.", futexErr)
	} else {
		d.add(levelOK, "futex", "", "futex wait, timeout and wake work on a shared mapping.")
	}
	if futex.RegisterBarrier() {
		d.add(levelOK, "membarrier", "", "membarrier(2) global expedited is registered: senders publish with plain stores.")
	} else {
		d.add(levelNote, "membarrier", "", "membarrier(2) is not usable (%v): senders publish with fenced stores, "+
			"which is correct but slower per value; a seccomp profile that allows membarrier brings the fast path back.", futex.Barrier())
	}
	mqRegions := 0
	for _, s := range regions {
		if s.Valid && s.Wait == shmchan.WaitMQ {
			mqRegions++
		}
	}
	if wantMQ || mqRegions > 0 {
		planned := 0
		if p != nil && wantMQ {
			planned = p.channels
		}
		d.checkMQ(mqRegions + planned)
	}
	for _, m := range missing {
		d.add(levelProblem, "regions", "", "%s.", m)
	}
	d.checkRegions(names, prefix, regions, len(missing))
	d.checkBells(names, prefix)
}

// checkMount: /dev/shm exists, is a tmpfs, writable, sticky.
func (d *doctor) checkMount() (shm.FS, bool) {
	st, err := os.Stat(shmDir)
	if err != nil {
		d.add(levelProblem, "/dev/shm", "mount a tmpfs there: mount -t tmpfs -o mode=1777,size=1g tmpfs /dev/shm.",
			"%v.", err)
		return shm.FS{}, false
	}
	if !st.IsDir() {
		d.add(levelProblem, "/dev/shm", "", "%s is not a directory.", shmDir)
		return shm.FS{}, false
	}
	fi, err := shm.FSStat(shmDir)
	if err != nil {
		d.add(levelProblem, "/dev/shm", "", "%v.", err)
		return shm.FS{}, false
	}
	fstype, source, opts, mounted := mountOf(shmDir)
	where := "not a mount point of its own"
	if mounted {
		where = fmt.Sprintf("mounted (%s %s, %s)", fstype, source, opts)
	}
	size := "no size limit"
	if !fi.Unlimited {
		size = fmt.Sprintf("size %s, %s free", humanBytes(fi.Size), humanBytes(fi.Free))
	}
	switch fi.Type {
	case shm.FSTmpfs:
		d.add(levelOK, "/dev/shm", "", "tmpfs, %s; %s.", size, where)
	case shm.FSRamfs:
		d.add(levelNote, "/dev/shm", "", "ramfs, which has no size limit: a runaway creator can fill memory; %s.", where)
	default:
		d.add(levelProblem, "/dev/shm", "mount a tmpfs there: mount -t tmpfs -o mode=1777,size=1g tmpfs /dev/shm.",
			"on %s, not tmpfs (%s): regions would be files on disk, slow and kept across reboots.", fi.Type, where)
	}
	mode := st.Mode()
	switch {
	case mode.Perm()&0o002 != 0 && mode&fs.ModeSticky == 0:
		d.add(levelProblem, "/dev/shm", "chmod 1777 /dev/shm.",
			"mode %v, writable by all without the sticky bit: any user can remove other users' regions.", mode)
	default:
		if err := shm.CheckWritable(shmDir); err != nil {
			d.add(levelProblem, "/dev/shm", "chmod 1777 /dev/shm.", "mode %v: this user cannot create regions there (%v).", mode, err)
		}
	}
	return fi, true
}

// loadRegions reads the regions to check, and says which could not be.
func loadRegions(names []string, prefix string) (regions []*regionSnap, missing []string) {
	if len(names) == 0 {
		snaps, err := snapshotAll(prefix)
		if err != nil {
			return nil, []string{fmt.Sprintf("cannot list %s: %v", shmDir, err)}
		}
		return snaps, nil
	}
	for _, n := range names {
		s, err := snapshotOne(n)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s: %s", n, describeOpenError(err)))
			continue
		}
		regions = append(regions, s)
	}
	return regions, missing
}

// checkSpace compares the free space with what is asked for.
func (d *doctor) checkSpace(fi shm.FS, names []string, regions []*regionSnap, p *plan) {
	if fi.Unlimited {
		d.add(levelNote, "shm-space", "", "no size limit on /dev/shm: regions are bounded by memory only.")
		return
	}
	// Pages a region has been given but not yet allocated would be taken
	// from the free space when first touched (the library allocates them
	// at creation; other writers may not).
	before := d.problems
	var total, unalloc, largest int64
	for _, s := range regions {
		total += s.Size
		largest = max(largest, s.Size)
		if s.Alloc >= 0 && s.Alloc < s.Size {
			unalloc += s.Size - s.Alloc
		}
	}
	if unalloc > fi.Free {
		d.add(levelProblem, "shm-space", "remove regions nobody uses (shmchan ls; shmchan rm), or "+shmFix,
			"regions hold %s not yet allocated, more than the %s free: writing to them will fail with SIGBUS.",
			humanBytes(unalloc), humanBytes(fi.Free))
	}
	switch {
	case p != nil:
		one, err := regionBytes(p.capacity, p.maxMsg)
		if err != nil {
			d.add(levelProblem, "shm-space", "", "planned channel: %v.", err)
			return
		}
		need := one * int64(p.channels)
		what := fmt.Sprintf("%d channel%s of %d x %d bytes need %s", p.channels, ifThen(p.channels == 1, "", "s"),
			p.capacity, p.maxMsg, humanBytes(need))
		if need > fi.Free {
			d.add(levelProblem, "shm-space", shmFix, "%s; /dev/shm has %s free of %s.", what, humanBytes(fi.Free), humanBytes(fi.Size))
		} else {
			d.add(levelOK, "shm-space", "", "%s; %s free of %s.", what, humanBytes(fi.Free), humanBytes(fi.Size))
		}
	case len(names) > 0:
		msg := fmt.Sprintf("the regions named take %s; %s free of %s", humanBytes(total), humanBytes(fi.Free), humanBytes(fi.Size))
		if largest > fi.Free {
			d.add(levelNote, "shm-space", "", "%s: recreating the largest (%s) while the old one is still mapped would not fit.",
				msg, humanBytes(largest))
		} else {
			d.add(levelOK, "shm-space", "", "%s.", msg)
		}
	default:
		need, _ := regionBytes(shmchan.DefaultCapacity, shmchan.DefaultMaxMsg)
		what := fmt.Sprintf("a channel with the default options (%d x %d bytes) needs %s",
			shmchan.DefaultCapacity, shmchan.DefaultMaxMsg, humanBytes(need))
		if need > fi.Free {
			d.add(levelProblem, "shm-space", shmFix, "/dev/shm has %s free of %s; %s.", humanBytes(fi.Free), humanBytes(fi.Size), what)
		} else {
			d.add(levelOK, "shm-space", "", "%s free of %s; %s (use -plan CAPxMSG for yours).", humanBytes(fi.Free), humanBytes(fi.Size), what)
		}
	}
	if fi.Size <= 64<<20 && d.problems == before {
		d.add(levelNote, "shm-space", "", "/dev/shm is only %s (Docker gives a container 64M unless told otherwise): enough for this, but little room to grow.",
			humanBytes(fi.Size))
	}
}

// checkContainer says whether this is a container or has its own IPC
// namespace, and what that means for sharing.
func (d *doctor) checkContainer(fi shm.FS, fsOK bool) {
	kind, why := detectContainer()
	ns, nsErr := ipcNamespace()
	ownIPC := nsErr == nil && ns != initialIPCNamespace
	if kind == "" && !ownIPC {
		d.add(levelOK, "container", "", "no container detected; the host's IPC namespace.")
		return
	}
	what := "no container detected"
	if kind != "" {
		what = fmt.Sprintf("running in %s (%s)", kind, why)
	}
	ipc := "the host's IPC namespace"
	if ownIPC {
		ipc = fmt.Sprintf("its own IPC namespace (ipc:[%d]): message-queue doorbells (WaitMQ) reach only processes in it", ns)
	}
	d.add(levelNote, "container", "", "%s, %s. Only processes that see the same /dev/shm share channels: "+
		"docker run --ipc=shareable on one container and --ipc=container:NAME on the others (or --ipc=host); "+
		"in Kubernetes the containers of one pod share an emptyDir {medium: Memory} mounted at /dev/shm.", what, ipc)
}

// detectContainer names the container runtime this runs in, and the
// evidence, or returns "".
func detectContainer() (kind, why string) {
	if _, err := os.Stat("/.dockerenv"); err == nil {
		return "a Docker container", "/.dockerenv exists"
	}
	if _, err := os.Stat("/run/.containerenv"); err == nil {
		return "a Podman container", "/run/.containerenv exists"
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return "a Kubernetes pod", "KUBERNETES_SERVICE_HOST is set"
	}
	for _, f := range []string{"/proc/1/cgroup", "/proc/self/cgroup"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		for _, k := range []struct{ word, kind string }{
			{"kubepods", "a Kubernetes pod"}, {"docker", "a Docker container"}, {"libpod", "a Podman container"},
			{"containerd", "a containerd container"}, {"crio", "a CRI-O container"}, {"lxc", "an LXC container"},
		} {
			if strings.Contains(s, k.word) {
				return k.kind, fmt.Sprintf("%s mentions %s", f, k.word)
			}
		}
	}
	if c := os.Getenv("container"); c != "" {
		return "a container", "container=" + c
	}
	return "", ""
}

// Doorbell queues: MaxMsg 4, MsgSize 1, two per region (see the root
// package). The per-queue charge against RLIMIT_MSGQUEUE is estimated
// generously.
const (
	bellMaxMsg   = 4
	bellMsgSize  = 1
	bellQueueEst = 512
)

func (d *doctor) checkMQ(regions int) {
	read := func(name string) (int64, error) {
		b, err := os.ReadFile("/proc/sys/fs/mqueue/" + name)
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	msgMax, err1 := read("msg_max")
	msgsizeMax, err2 := read("msgsize_max")
	queuesMax, err3 := read("queues_max")
	if err := errors.Join(err1, err2, err3); err != nil {
		d.add(levelNote, "mqueue", "", "cannot read the limits in /proc/sys/fs/mqueue: %v.", err)
	} else {
		need := int64(2 * regions)
		switch {
		case msgMax < bellMaxMsg || msgsizeMax < bellMsgSize:
			d.add(levelProblem, "mqueue", fmt.Sprintf("sysctl -w fs.mqueue.msg_max=%d (and fs.mqueue.msgsize_max=%d).", max(msgMax, 10), max(msgsizeMax, 8192)),
				"msg_max %d, msgsize_max %d: doorbells need %d messages of %d byte.", msgMax, msgsizeMax, bellMaxMsg, bellMsgSize)
		case need > queuesMax && os.Geteuid() != 0:
			d.add(levelProblem, "mqueue", fmt.Sprintf("sysctl -w fs.mqueue.queues_max=%d.", max(need+64, 256)),
				"queues_max %d, but %d WaitMQ channel%s need %d queues (root is not bound by it).", queuesMax, regions, ifThen(regions == 1, "", "s"), need)
		default:
			d.add(levelOK, "mqueue", "", "msg_max %d, msgsize_max %d, queues_max %d: enough for %d WaitMQ channel%s (2 queues of %d x %d byte each).",
				msgMax, msgsizeMax, queuesMax, regions, ifThen(regions == 1, "", "s"), bellMaxMsg, bellMsgSize)
		}
	}
	if lim, err := mq.UserLimit(); err == nil && lim != mq.Unlimited {
		room := lim / bellQueueEst / 2
		if int64(room) < int64(regions) {
			d.add(levelProblem, "mqueue", "raise it: ulimit -q unlimited in the service's shell, LimitMSGQUEUE= in a systemd unit, or docker run --ulimit msgqueue=-1.",
				"RLIMIT_MSGQUEUE %s has room for about %d WaitMQ channels, %d are asked for.", humanBytes(int64(lim)), room, regions)
		} else {
			d.add(levelOK, "mqueue", "", "RLIMIT_MSGQUEUE %s: room for about %d WaitMQ channels.", humanBytes(int64(lim)), room)
		}
	}
	name := fmt.Sprintf("shmchan-doctor-%d-probe.rx", os.Getpid())
	q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &mq.Attr{MaxMsg: bellMaxMsg, MsgSize: bellMsgSize})
	if err != nil {
		d.add(levelProblem, "mqueue", "a kernel with POSIX message queues (CONFIG_POSIX_MQUEUE) and a seccomp profile that allows mq_open; "+
			"or create channels with WithWait(WaitFutex).", "cannot create a test doorbell queue: %v.", err)
	} else {
		tryErr := q.TrySend([]byte{1}, 0)
		q.Close()
		mq.Unlink(name)
		if tryErr != nil {
			d.add(levelProblem, "mqueue", "", "a test doorbell queue was created but a send failed: %v.", tryErr)
		} else {
			d.add(levelOK, "mqueue", "", "created, rang and removed a test doorbell queue.")
		}
	}
	if _, _, _, ok := mountOf("/dev/mqueue"); !ok {
		d.add(levelNote, "mqueue", "mount -t mqueue mqueue /dev/mqueue.",
			"/dev/mqueue is not mounted: queues work without it, but leftover doorbells cannot be listed or found.")
	}
}
