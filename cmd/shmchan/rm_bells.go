package main

// Doorbell queues left behind: a WaitMQ region's two queues (NAME.rx and
// NAME.tx) whose region file is gone, because it was removed by hand or
// its remover died between the two steps of Unlink. They block a new
// Create of NAME (the queues are created exclusively). Listing queues
// needs the mqueue filesystem mounted at /dev/mqueue; without it they
// cannot be found, only opened by name.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/mq"
)

const mqueueDir = "/dev/mqueue"

// orphanBells returns the region names whose two doorbell queues exist,
// both with the doorbell attributes (4 messages of 1 byte), while no file
// of that name is in /dev/shm and no process this user can see has either
// open.
func orphanBells() ([]string, error) {
	ents, err := os.ReadDir(mqueueDir)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	open := openQueues()
	var out []string
	for n := range have {
		base, ok := strings.CutSuffix(n, ".rx")
		if !ok || !have[base+".tx"] {
			continue
		}
		if _, err := os.Lstat(shmDir + "/" + base); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if open[n] || open[base+".tx"] {
			continue // a process still uses them (its region may be unlinked, or in another mount namespace)
		}
		if isBell(n) && isBell(base+".tx") {
			out = append(out, base)
		}
	}
	sort.Strings(out)
	return out, nil
}

// openQueues returns the names of the message queues that processes have
// open (a queue descriptor's /proc/PID/fd link reads "/NAME"). Only the
// processes this user may inspect are seen (all of them for root).
func openQueues() map[string]bool {
	out := map[string]bool{}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			t, err := os.Readlink(dir + "/" + fd.Name())
			if err == nil && len(t) > 1 && t[0] == '/' && !strings.Contains(t[1:], "/") {
				out[t[1:]] = true
			}
		}
	}
	return out
}

// isBell reports whether queue name has a doorbell's attributes.
func isBell(name string) bool {
	ok, _ := bellOwner(name)
	return ok
}

// bellOwner opens queue name and reports whether it has a doorbell's
// attributes, and the uid that owns it. A queue this user may not open is
// not a doorbell of theirs.
func bellOwner(name string) (bool, uint32) {
	q, err := mq.Open(name, os.O_RDONLY, 0, nil)
	if err != nil {
		return false, 0
	}
	defer q.Close()
	a, err := q.Attr()
	if err != nil || a.MaxMsg != bellMaxMsg || a.MsgSize != bellMsgSize {
		return false, 0
	}
	uid, _, err := q.Owner()
	return err == nil, uid
}

// rmStaleBells removes (or with dry, lists) the orphaned doorbells with
// the prefix that belong to this user (any, for root). Without
// /dev/mqueue it does nothing.
func rmStaleBells(prefix string, dry bool) int {
	if _, err := os.Stat(mqueueDir); err != nil {
		return 0
	}
	if _, _, _, ok := mountOf(mqueueDir); !ok {
		return 0
	}
	orphans, err := orphanBells()
	if err != nil {
		errf("rm", "%s: %v", mqueueDir, err)
		return 1
	}
	euid := uint32(os.Geteuid())
	status := 0
	for _, orphan := range orphans {
		if !strings.HasPrefix(orphan, prefix) {
			continue
		}
		for _, b := range region.BellNames(orphan) {
			if ok, uid := bellOwner(b); !ok || (euid != 0 && uid != euid) {
				continue
			}
			if dry {
				fmt.Printf("would remove doorbell /%s\n", b)
				continue
			}
			if err := mq.Unlink(b); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errf("rm", "doorbell /%s: %v", b, err)
				status = 1
				continue
			}
			fmt.Printf("removed doorbell /%s\n", b)
		}
	}
	return status
}
