package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/shmchan/shmchan/mq"
)

// Object directories: the shared memory objects and, where an mqueue file
// system is mounted, the message queues.
const (
	shmDir = "/dev/shm"
	mqDir  = "/dev/mqueue"
)

// watchdogEnv makes a run of the test binary the watchdog of the test
// process whose prefix is its value.
const watchdogEnv = "SHMCHAN_TESTUTIL_WATCHDOG"

// A prefix the watchdog accepts: a name, the test process's pid, a dash.
var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9-]*-[0-9]+-$`)

// leftovers finds and removes what a test process left behind: the
// entries of shmDir and mqDir under its prefix, and the queues tracked by
// name, except those that were there before it began (keep).
type leftovers struct {
	prefix string
	keep   map[string]bool // paths in shmDir and mqDir
	queues func() []string // names of queues tracked by name
}

func newLeftovers(prefix string) *leftovers {
	l := &leftovers{prefix: prefix, keep: map[string]bool{}, queues: trackedQueues}
	for _, p := range l.listed() {
		l.keep[p] = true
	}
	return l
}

// listed returns the paths in shmDir and mqDir that start with the prefix.
func (l *leftovers) listed() []string {
	var paths []string
	for _, dir := range []string{shmDir, mqDir} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), l.prefix) {
				paths = append(paths, dir+"/"+e.Name())
			}
		}
	}
	return paths
}

// sweep removes the leftovers and returns what it removed (and what it
// could not remove, with the error), sorted.
func (l *leftovers) sweep() []string {
	var out []string
	for _, p := range l.listed() {
		if l.keep[p] {
			continue
		}
		var err error
		if name, ok := strings.CutPrefix(p, mqDir+"/"); ok {
			err = mq.Unlink("/" + name)
		} else {
			err = os.RemoveAll(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			p += " (" + err.Error() + ")"
		}
		out = append(out, p)
	}
	for _, q := range l.queues() {
		if l.keep[mqDir+"/"+q] {
			continue
		}
		// Unlink succeeds only for a queue that is still there (listed
		// above already, where an mqueue file system is mounted).
		switch err := mq.Unlink("/" + q); {
		case err == nil:
			out = append(out, "message queue /"+q)
		case !errors.Is(err, fs.ErrNotExist):
			out = append(out, "message queue /"+q+" ("+err.Error()+")")
		}
	}
	sort.Strings(out)
	return out
}

// watchdogPipe is the write end of the pipe to the watchdog: it learns
// the tracked queues through it, and its end of file when this process is
// gone, however it went.
var watchdogPipe *os.File

// startWatchdog runs this test binary again as the watchdog of this
// process. It is not waited for: it outlives this process, in a process
// group of its own (a Ctrl-C to the tests does not stop it), and exits
// once it has swept. It writes only to stderr, so `go test`, which waits
// for the output to end, returns after the sweep.
func startWatchdog(l *leftovers) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), watchdogEnv+"="+l.prefix, NoRaceExitDelay())
	cmd.Stdin = r
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	_ = cmd.Process.Release()
	watchdogPipe = w
	keep := make([]string, 0, len(l.keep))
	for p := range l.keep {
		keep = append(keep, p)
	}
	sort.Strings(keep)
	for _, p := range keep {
		fmt.Fprintf(w, "keep %s\n", p)
	}
	return nil
}

// watchdog is the watchdog's main: it reads what the test process tells
// it until the pipe's end of file, then sweeps.
func watchdog(prefix string) int {
	if !prefixRE.MatchString(prefix) {
		fmt.Fprintf(os.Stderr, "testutil watchdog: refusing to sweep prefix %q\n", prefix)
		return 2
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE, syscall.SIGTTOU)
	var queues []string
	l := &leftovers{prefix: prefix, keep: map[string]bool{}, queues: func() []string { return queues }}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch kind, arg, _ := strings.Cut(sc.Text(), " "); kind {
		case "keep":
			l.keep[arg] = true
		case "queue":
			queues = append(queues, arg)
		}
	}
	if removed := l.sweep(); len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "testutil watchdog: the test process ended without cleaning up; removed %v\n", removed)
	}
	return 0
}
