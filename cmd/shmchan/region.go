package main

// Reading regions for ls, stat, watch and rm.
//
// The tool trusts nothing it reads. A region is opened read-only and mapped
// PROT_READ, so no bug here can write to it. Only the part before the slots
// is mapped (header, counters, role entries), never more than the file
// held when it was measured with fstat, and every access to the mapping runs
// under ring.Protect: a peer that truncates the file makes the next access
// fault, and the fault becomes an error instead of a crash. Every mutable
// word is loaded once, atomically, into a snapshot, and the snapshot is what
// gets checked and printed.

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan"
	iregion "github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/shm"
)

// maxMapped is the most the tool ever maps: everything before slot 0 of a
// region with the largest number of sender entries.
var maxMapped = int(layout.DataOffsetFor(layout.MaxProducers))

// errNotRegion marks a file that is not a shmchan region at all (too short
// for a magic, or another magic): ls skips it quietly, rm refuses it.
var errNotRegion = errors.New("not a shmchan region")

// errNotReady marks a region whose header is whole but whose ready word is
// not set: its creator is still writing it, or died doing so.
var errNotReady = errors.New("ready word not set (the creator is still setting it up, or died doing so)")

// shmDir is where regions live. Tests and users never change it: the names
// the library uses are always in /dev/shm.
const shmDir = shm.Dir

// handle is an open, read-only view of one region: the descriptor (for
// fstat and lock tests) and a read-only mapping of its first bytes.
type handle struct {
	name string // without a leading slash
	path string
	fd   int
	mem  []byte // PROT_READ mapping, nil for a file too short to map
	st   unix.Stat_t
}

// cleanArg turns what a user typed into a region name: "x", "/x" and
// "/dev/shm/x" all name /dev/shm/x.
func cleanArg(arg string) (string, error) {
	name := strings.TrimPrefix(arg, shmDir+"/")
	if _, err := shm.Path(name); err != nil {
		return "", err
	}
	return strings.TrimPrefix(name, "/"), nil
}

// openHandle opens name read-only. A missing file is fs.ErrNotExist; a
// symbolic link, directory, FIFO or device is errNotRegion.
func openHandle(name string) (*handle, error) {
	path, err := shm.Path(name)
	if err != nil {
		return nil, err
	}
	var fd int
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("%w: a symbolic link", errNotRegion)
		case errors.Is(err, unix.EISDIR):
			return nil, fmt.Errorf("%w: a directory", errNotRegion)
		case errors.Is(err, unix.ENXIO):
			return nil, fmt.Errorf("%w: a socket or device", errNotRegion)
		}
		return nil, err
	}
	h := &handle{name: strings.TrimPrefix(name, "/"), path: path, fd: fd}
	if err := unix.Fstat(fd, &h.st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fstat: %w", err)
	}
	if h.st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: not a regular file", errNotRegion)
	}
	if n := int(min(h.st.Size, int64(maxMapped))); n > 0 {
		mem, err := unix.Mmap(fd, 0, n, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
		}
		h.mem = mem
	}
	return h, nil
}

func (h *handle) close() {
	if h.mem != nil {
		unix.Munmap(h.mem)
		h.mem = nil
	}
	unix.Close(h.fd)
}

// size is the file's size now (fstat), or -1 if fstat failed.
func (h *handle) size() int64 {
	var st unix.Stat_t
	if err := unix.Fstat(h.fd, &st); err != nil {
		return -1
	}
	return st.Size
}

// load64 and load32 read one word of the mapping atomically, or report
// that it lies past the mapping. The caller runs under ring.Protect.
func (h *handle) load64(off int) (uint64, bool) {
	if off < 0 || off%8 != 0 || off+8 > len(h.mem) {
		return 0, false
	}
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&h.mem[off]))), true
}

func (h *handle) load32(off int) (uint32, bool) {
	if off < 0 || off%4 != 0 || off+4 > len(h.mem) {
		return 0, false
	}
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&h.mem[off]))), true
}

// heldEntries returns which of role entries [0, n) are locked by some open
// file description: their holders are alive. The tool's own descriptor
// holds no locks. F_OFD_GETLK over a range reports one conflicting lock in
// it, not necessarily the lowest, so the search splits the range around
// each lock found: one call per held run of entries and per gap, not one
// per entry.
func (h *handle) heldEntries(n int) (map[int]bool, error) {
	held := map[int]bool{}
	base := int64(layout.RoleLockBase)
	todo := [][2]int64{{base, base + int64(n)}}
	for len(todo) > 0 {
		start, end := todo[len(todo)-1][0], todo[len(todo)-1][1]
		todo = todo[:len(todo)-1]
		if start >= end {
			continue
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: start, Len: end - start}
		var err error
		for {
			err = unix.FcntlFlock(uintptr(h.fd), unix.F_OFD_GETLK, &lk)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			return held, fmt.Errorf("test role locks: %w", err)
		}
		if lk.Type == unix.F_UNLCK {
			continue
		}
		lo, hi := max(lk.Start, start), end
		if lk.Len > 0 {
			hi = min(lk.Start+lk.Len, end)
		}
		if hi <= lo {
			// Not a lock inside the range: cannot happen; do not loop.
			return held, fmt.Errorf("test role locks: F_OFD_GETLK reported [%d, +%d) for [%d, %d)", lk.Start, lk.Len, start, end)
		}
		for i := lo; i < hi; i++ {
			held[int(i-base)] = true
		}
		todo = append(todo, [2]int64{start, lo}, [2]int64{hi, end})
	}
	return held, nil
}

// rawHeader is the immutable header decoded field by field without any
// check, so that stat can show what a damaged region holds.
type rawHeader struct {
	Magic       string `json:"magic"`
	Version     uint32 `json:"version"`
	DataOffset  uint32 `json:"data_offset"`
	Mode        uint32 `json:"-"`
	ModeName    string `json:"mode"` // SPSC, MPSC, or mode(N) for a bad value
	Wait        uint32 `json:"-"`
	WaitName    string `json:"wait"` // futex, mq, spin, or wait(N)
	Capacity    uint64 `json:"capacity"`
	SlotSize    uint32 `json:"slot_size"`
	MaxMsg      uint32 `json:"max_message"`
	Producers   uint32 `json:"producers"`
	Flags       uint32 `json:"flags"`
	Fingerprint uint64 `json:"-"`
	FPHex       string `json:"fingerprint"` // 16 hex digits (a JSON number would lose bits)
	TotalSize   uint64 `json:"total_size"`
	CreatorPID  uint32 `json:"creator_pid"`
	CreatorUID  uint32 `json:"creator_uid"`
	Created     int64  `json:"created_unix_nano"`
	CodecName   string `json:"codec"`
	TypeName    string `json:"type"`
	Checksum    uint64 `json:"-"`
	Computed    uint64 `json:"-"`
	ChecksumHex string `json:"checksum"`
	ComputedHex string `json:"checksum_computed"`
}

func decodeRaw(b []byte) rawHeader {
	le := binary.LittleEndian
	str := func(b []byte) string {
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	h := rawHeader{
		Magic:       string(b[layout.OffMagic : layout.OffMagic+8]),
		Version:     le.Uint32(b[layout.OffVersion:]),
		DataOffset:  le.Uint32(b[layout.OffDataOffset:]),
		Mode:        le.Uint32(b[layout.OffMode:]),
		Wait:        le.Uint32(b[layout.OffWait:]),
		Capacity:    le.Uint64(b[layout.OffCapacity:]),
		SlotSize:    le.Uint32(b[layout.OffSlotSize:]),
		MaxMsg:      le.Uint32(b[layout.OffMaxMsg:]),
		Producers:   le.Uint32(b[layout.OffProducers:]),
		Flags:       le.Uint32(b[layout.OffFlags:]),
		Fingerprint: le.Uint64(b[layout.OffFingerprint:]),
		TotalSize:   le.Uint64(b[layout.OffTotalSize:]),
		CreatorPID:  le.Uint32(b[layout.OffCreatorPID:]),
		CreatorUID:  le.Uint32(b[layout.OffCreatorUID:]),
		Created:     int64(le.Uint64(b[layout.OffCreated:])),
		CodecName:   str(b[layout.OffCodecName:layout.OffTypeName]),
		TypeName:    str(b[layout.OffTypeName:layout.OffChecksum]),
		Checksum:    le.Uint64(b[layout.OffChecksum:]),
		Computed:    layout.Checksum(b),
	}
	h.ModeName, h.WaitName = modeName(layout.Mode(h.Mode)), waitName(layout.Wait(h.Wait))
	h.FPHex = fmt.Sprintf("%016x", h.Fingerprint)
	h.ChecksumHex, h.ComputedHex = fmt.Sprintf("%016x", h.Checksum), fmt.Sprintf("%016x", h.Computed)
	return h
}

// counters is one snapshot of the mutable words, each loaded once.
type counters struct {
	Tail          uint64 `json:"tail_word"` // as stored, closed bit (63) included
	Sent          uint64 `json:"sent"`      // tail count: values sent (MPSC: claimed)
	Closed        bool   `json:"closed"`    // closed bit: CloseSend was called
	Head          uint64 `json:"received"`  // head: values received
	Abandoned     uint64 `json:"abandoned"`
	SenderWakes   uint64 `json:"sender_wakes"`
	ReceiverWakes uint64 `json:"receiver_wakes"`
	RecvSleeps    uint64 `json:"receiver_sleeps"`
	SendSleeps    uint64 `json:"sender_sleeps"`
	RecvWaiting   uint32 `json:"receiver_waiting"`
	SendWaiters   uint32 `json:"sender_waiters"`
}

func (c counters) sent() uint64     { return c.Tail &^ layout.ClosedBit }
func (c counters) closed() bool     { return c.Tail&layout.ClosedBit != 0 }
func (c counters) received() uint64 { return c.Head }

// fill returns tail-head, and false if the indices are impossible for the
// capacity (head ahead of tail, or more queued than fits).
func (c counters) fill(capacity uint64) (uint64, bool) {
	t := c.sent()
	if c.Head > t || t-c.Head > capacity {
		return 0, false
	}
	return t - c.Head, true
}

// readCounters takes a snapshot; false if the mapping is too short for it.
// The caller runs under ring.Protect.
func (h *handle) readCounters() (counters, bool) {
	var c counters
	ok := true
	get64 := func(off int) uint64 {
		v, good := h.load64(off)
		ok = ok && good
		return v
	}
	get32 := func(off int) uint32 {
		v, good := h.load32(off)
		ok = ok && good
		return v
	}
	c.Tail = get64(layout.OffTail)
	c.Sent, c.Closed = c.Tail&^layout.ClosedBit, c.Tail&layout.ClosedBit != 0
	c.Head = get64(layout.OffHead)
	c.Abandoned = get64(layout.OffAbandoned)
	c.SenderWakes = get64(layout.OffSenderWakes)
	c.ReceiverWakes = get64(layout.OffReceiverWakes)
	c.RecvSleeps = get64(layout.OffRecvSleeps)
	c.SendSleeps = get64(layout.OffSendSleeps)
	c.RecvWaiting = get32(layout.OffRecvWaiting)
	c.SendWaiters = get32(layout.OffSendWaiters)
	return c, ok
}

// roleInfo is one role entry: what its holder wrote there, and whether its
// role lock is held (the holder is alive).
type roleInfo struct {
	Entry     int    `json:"entry"`
	Role      string `json:"role"` // "receiver" or "sender"
	PID       uint32 `json:"pid"`
	State     string `json:"state"` // "alive", "dead" or "free"
	Alive     bool   `json:"alive"`
	Start     uint64 `json:"start_ticks"`
	Since     int64  `json:"since_unix_nano"`
	Sent      uint64 `json:"sent"`
	Takeovers uint64 `json:"takeovers"`
	Sleeping  bool   `json:"sleeping"`
}

// short is the role for ls: "recv 123 alive", "send 124 dead", and in
// MPSC "send#3 125 alive".
func (r roleInfo) short(mpsc bool) string {
	what := "recv"
	switch {
	case r.Role != "sender":
	case mpsc:
		what = fmt.Sprintf("send#%d", r.Entry)
	default:
		what = "send"
	}
	return fmt.Sprintf("%s %d %s", what, r.PID, r.State)
}

// readRoles reads entries [0, n) that are in use or were used: a non-zero
// pid or a held lock. The caller runs under ring.Protect.
func (h *handle) readRoles(n int, held map[int]bool) []roleInfo {
	var out []roleInfo
	for i := 0; i < n; i++ {
		off := layout.RoleOffset(i)
		pid, ok := h.load32(off + layout.RolePID)
		if !ok {
			break
		}
		if pid == 0 && !held[i] {
			continue
		}
		r := roleInfo{Entry: i, Role: "sender", PID: pid, Alive: held[i]}
		if i == 0 {
			r.Role = "receiver"
		}
		switch {
		case held[i]:
			r.State = "alive"
		case pid != 0:
			r.State = "dead"
		default:
			r.State = "free"
		}
		flags, _ := h.load32(off + layout.RoleFlags)
		r.Sleeping = flags&layout.RoleSleeping != 0
		r.Start, _ = h.load64(off + layout.RoleStart)
		since, _ := h.load64(off + layout.RoleSince)
		r.Since = int64(since)
		r.Sent, _ = h.load64(off + layout.RoleSent)
		r.Takeovers, _ = h.load64(off + layout.RoleTakeovers)
		out = append(out, r)
	}
	return out
}

// bellInfo is one doorbell queue of a WaitMQ region.
type bellInfo struct {
	Name    string `json:"name"`
	Exists  bool   `json:"exists"`
	Pending int64  `json:"pending,omitempty"`
	MaxMsg  int64  `json:"max_messages,omitempty"`
	Error   string `json:"error,omitempty"`
}

// bellNames are the doorbell queues' names (see the root package).
func bellNames(name string) [2]string {
	name = strings.TrimPrefix(name, "/")
	return [2]string{name + ".rx", name + ".tx"}
}

func readBells(name string) []bellInfo {
	var out []bellInfo
	for _, n := range bellNames(name) {
		b := bellInfo{Name: "/" + n}
		q, err := mq.Open(n, os.O_RDONLY, 0, nil)
		switch {
		case err == nil:
			b.Exists = true
			if a, err := q.Attr(); err == nil {
				b.Pending, b.MaxMsg = a.CurMsgs, a.MaxMsg
			} else {
				b.Error = err.Error()
			}
			q.Close()
		case errors.Is(err, fs.ErrNotExist):
		default:
			b.Exists = true // it is there, but we may not look at it
			b.Error = err.Error()
		}
		out = append(out, b)
	}
	return out
}

// region is everything the tool found at one name.
type region struct {
	Name    string      `json:"name"`
	Path    string      `json:"path"`
	Size    int64       `json:"size"`
	Perm    fs.FileMode `json:"-"`
	PermStr string      `json:"perm"`
	UID     uint32      `json:"uid"`
	GID     uint32      `json:"gid"`
	Owner   string      `json:"owner"`
	Group   string      `json:"group"`
	ModTime time.Time   `json:"modified"`

	// Header: Valid says whether it passed every check of layout.Validate
	// (magic, version, checksum, parameters, file size); Error says what
	// failed. Raw is what the bytes say, checked or not.
	Valid bool       `json:"valid"`
	Error string     `json:"error,omitempty"`
	err   error      // Error as an error, for errors.Is
	Ready bool       `json:"ready"`
	Raw   *rawHeader `json:"header,omitempty"`
	hdr   layout.Header

	State    string     `json:"state"`          // open, closed, damaged or not-ready
	Fill     *uint64    `json:"fill,omitempty"` // values queued (valid regions with sane indices)
	Counters *counters  `json:"counters,omitempty"`
	Roles    []roleInfo `json:"roles"`
	Bells    []bellInfo `json:"doorbells,omitempty"`
	Attached []int      `json:"attached_pids,omitempty"`
	// anyHeld: some role lock in the whole possible range is held, whatever
	// the header says (rm's safety check on damaged regions too).
	anyHeld bool
}

func (r *region) isMPSC() bool { return r.Valid && r.hdr.Mode == layout.ModeMPSC }

// inspect reads everything about one region. The error is for a name that
// cannot be looked at (absent, unreadable, not a regular file); what is
// wrong with a region that could be read is in region.Error.
func inspect(name string) (*region, error) {
	h, err := openHandle(name)
	if err != nil {
		return nil, err
	}
	defer h.close()
	r := &region{
		Name:    h.name,
		Path:    h.path,
		Size:    h.st.Size,
		Perm:    fs.FileMode(h.st.Mode & 0o777),
		UID:     h.st.Uid,
		GID:     h.st.Gid,
		Owner:   userName(h.st.Uid),
		Group:   groupName(h.st.Gid),
		ModTime: time.Unix(h.st.Mtim.Unix()),
		Roles:   []roleInfo{},
	}
	r.PermStr = r.Perm.String()
	if err := r.read(h); err != nil {
		return nil, err
	}
	if r.err != nil {
		r.Error = r.err.Error()
	}
	r.State = state(r)
	if r.Valid && r.Counters != nil {
		if n, ok := r.Counters.fill(r.hdr.Capacity); ok {
			r.Fill = &n
		}
	}
	return r, nil
}

// read fills in r from the mapping; a memory fault (truncation) becomes
// r.err. It returns errNotRegion for a file without the magic.
func (r *region) read(h *handle) error {
	var fault error
	defer func() {
		if fault != nil {
			r.Valid, r.err = false, fault
		}
	}()
	defer iregion.Recover(&fault, iregion.Protect()) // runs first: a fault becomes fault

	if len(h.mem) < len(layout.Magic) || string(h.mem[:len(layout.Magic)]) != layout.Magic {
		return errNotRegion
	}
	if len(h.mem) < layout.HeaderSize {
		r.err = fmt.Errorf("%w: file is %d bytes, shorter than the %d-byte header", shmchan.ErrCorrupt, h.st.Size, layout.HeaderSize)
	} else {
		var b [layout.HeaderSize]byte
		copy(b[:], h.mem) // the header is immutable; one copy, checked and shown
		raw := decodeRaw(b[:])
		r.Raw = &raw
		hdr, perr := layout.Peek(b[:])
		switch {
		case perr != nil:
			r.err = perr
		case uint64(h.st.Size) < hdr.TotalSize:
			r.err = fmt.Errorf("%w: file is %d bytes, header claims %d", shmchan.ErrCorrupt, h.st.Size, hdr.TotalSize)
		default:
			r.Valid, r.hdr = true, hdr
		}
	}
	if v, ok := h.load32(layout.OffReady); ok && v == layout.ReadyValue {
		r.Ready = true
	}
	if r.Valid && !r.Ready {
		r.Valid = false
		r.err = fmt.Errorf("%w: %w", shmchan.ErrCorrupt, errNotReady)
	}
	if c, ok := h.readCounters(); ok {
		r.Counters = &c
	}

	// Role entries: the header's count if it validated; otherwise as many
	// as the raw count claims and the file holds (a damaged header is still
	// worth showing the pids of).
	n := 1
	switch {
	case r.Valid:
		n += int(r.hdr.Producers)
	case r.Raw != nil:
		n += int(min(r.Raw.Producers, layout.MaxProducers))
	}
	held, lerr := h.heldEntries(layout.MaxProducers + 1)
	if lerr != nil && r.err == nil {
		r.err = lerr
	}
	r.anyHeld = len(held) > 0
	r.Roles = append(r.Roles, h.readRoles(n, held)...)
	for i := range held {
		if i >= n { // a lock beyond the entries the header has: show it
			r.Roles = append(r.Roles, roleInfo{Entry: i, Role: "sender", State: "alive", Alive: true})
		}
	}
	if r.Valid && r.hdr.Wait == layout.WaitMQ {
		r.Bells = readBells(r.Name)
	}
	return nil
}

// liveRoles returns the live role entries.
func (r *region) liveRoles() []roleInfo {
	var live []roleInfo
	for _, ro := range r.Roles {
		if ro.Alive {
			live = append(live, ro)
		}
	}
	return live
}

// modeName and waitName name the header's mode and wait fields.
func modeName(m layout.Mode) string { return strings.ToUpper(m.String()) }

func waitName(w layout.Wait) string { return w.String() }

var (
	userNames  = map[uint32]string{}
	groupNames = map[uint32]string{}
)

func userName(uid uint32) string {
	if n, ok := userNames[uid]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(n); err == nil {
		n = u.Username
	}
	userNames[uid] = n
	return n
}

func groupName(gid uint32) string {
	if n, ok := groupNames[gid]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(n); err == nil {
		n = g.Name
	}
	groupNames[gid] = n
	return n
}

// attachedPIDs maps each /dev/shm path to the processes (other than this
// one) that have it open, from /proc/*/fd. Only processes this user may
// inspect are seen (all of them for root). A library handle keeps its
// region's descriptor open as long as it lives, so a region nobody has
// open has no handle at all.
func attachedPIDs() map[string][]int {
	out := map[string][]int{}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		seen := map[string]bool{}
		for _, fd := range fds {
			target, err := os.Readlink(dir + "/" + fd.Name())
			if err != nil || !strings.HasPrefix(target, shmDir+"/") {
				continue
			}
			target = strings.TrimSuffix(target, " (deleted)")
			if !seen[target] {
				seen[target] = true
				out[target] = append(out[target], pid)
			}
		}
	}
	return out
}

// processAlive reports whether pid names a running process.
func processAlive(pid uint32) bool {
	if pid == 0 || pid > 1<<22 {
		return false
	}
	_, err := os.Stat("/proc/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}

// Formatting helpers.

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10)
	}
	f := float64(n)
	for _, s := range []string{"K", "M", "G", "T"} {
		f /= unit
		if f < unit {
			if f < 10 {
				return fmt.Sprintf("%.1f%s", f, s)
			}
			return fmt.Sprintf("%.0f%s", f, s)
		}
	}
	return fmt.Sprintf("%.0fP", f/unit)
}

func fmtTime(ns int64) string {
	if ns <= 0 {
		return "-"
	}
	return time.Unix(0, ns).Format("2006-01-02 15:04:05.000")
}

// parseArgs parses a command line in which flags and operands may be mixed
// ("stat NAME -json"); "--" ends the flags. -h and -help print the usage on
// standard output: ok false and code 0. A bad flag prints the error and the
// usage on standard error: ok false and code 2.
func parseArgs(fset *flag.FlagSet, args []string, usage string) (operands []string, ok bool, code int) {
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	for {
		err := fset.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, usage)
			return nil, false, 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n%s", fset.Name(), err, usage)
			return nil, false, 2
		}
		rest := fset.Args()
		if len(rest) == 0 {
			return operands, true, 0
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(operands, rest...), true, 0
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// errf prints "shmchan: CMD: message" on standard error.
func errf(cmd, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "shmchan: "+cmd+": "+format+"\n", args...)
}

// describeOpenError turns an openHandle error into a short reason.
func describeOpenError(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such region"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}
