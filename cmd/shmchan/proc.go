package main

// What the tools learn from the system rather than from a region: user and
// group names, and which processes have a region open (from /proc).

import (
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/shmchan/shmchan/shm"
)

// shmDir is where regions live. Tests and users never change it: the names
// the library uses are always in /dev/shm.
const shmDir = shm.Dir

var (
	userNames  = map[uint32]string{}
	groupNames = map[uint32]string{}
)

// userName is the name of uid, or the number if it has none.
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

// groupName is the name of gid, or the number if it has none.
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
