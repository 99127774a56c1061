package main

// What doctor asks of the system: the filesystem under /dev/shm, a probe
// of shared memory and futexes, the message-queue limit, the IPC namespace
// and the mount table. The system calls are the library's (shm, futex, mq);
// this file only reads /proc.

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/shmchan/shmchan/futex"
	"github.com/shmchan/shmchan/shm"
)

// probeShm creates, maps, uses and removes a small object in /dev/shm, and
// on its mapping checks that futex wait and wake work. It returns the
// first failure of each.
func probeShm() (shmErr, futexErr error) {
	name := fmt.Sprintf("shmchan-doctor-%d-probe", os.Getpid())
	obj, err := shm.Create(name, 4096, shm.Options{})
	if err != nil {
		return err, errors.New("not tried: no shared mapping")
	}
	defer shm.Unlink(name)
	defer obj.Close()
	mem, err := obj.Map(4096)
	if err != nil {
		return err, errors.New("not tried: no shared mapping")
	}
	mem[0] = 1
	return nil, futex.Probe(mem[64:])
}

// initialIPCNamespace is the inode of the first IPC namespace, the host's
// (PROC_IPC_INIT_INO in the kernel).
const initialIPCNamespace = 0xEFFFFFFF

// ipcNamespace returns the inode of this process's IPC namespace.
func ipcNamespace() (uint64, error) {
	link, err := os.Readlink("/proc/self/ns/ipc")
	if err != nil {
		return 0, err
	}
	var ino uint64
	if _, err := fmt.Sscanf(link, "ipc:[%d]", &ino); err != nil {
		return 0, fmt.Errorf("%q: %w", link, err)
	}
	return ino, nil
}

// mountOf returns the mount of the exact mount point dir from
// /proc/self/mountinfo: its filesystem type, source and options; ok false
// if dir is not a mount point. Of the mounts listed at dir, only one whose
// device is the one dir shows now counts: a mount hidden under a later
// mount of a parent directory is still listed.
func mountOf(dir string) (fstype, source, options string, ok bool) {
	st, err := shm.FSStat(dir)
	if err != nil {
		return "", "", "", false
	}
	dev := fmt.Sprintf("%d:%d", st.DevMajor, st.DevMinor)
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 3 || f[2] != dev || unescapeMount(f[4]) != dir {
			continue
		}
		// The last mount on a point is the one that shows.
		fstype, source, options, ok = g[0], g[1], g[2], true
	}
	return fstype, source, options, ok
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
