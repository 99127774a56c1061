package main

// The system calls and the one unsafe conversion doctor needs.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan/futex"
	"github.com/shmchan/shmchan/shm"
)

// Filesystem magic numbers (statfs f_type).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

// fsInfo is what statfs says about a directory's filesystem.
type fsInfo struct {
	Type      int64
	Size      int64 // bytes; 0 for a tmpfs without a size limit
	Free      int64 // bytes available to unprivileged users
	Unlimited bool
}

func statFS(path string) (fsInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fsInfo{}, err
	}
	bs := int64(st.Bsize)
	fi := fsInfo{Type: int64(st.Type), Size: int64(st.Blocks) * bs, Free: int64(st.Bavail) * bs}
	if st.Blocks == 0 && (fi.Type == tmpfsMagic || fi.Type == ramfsMagic) {
		fi.Unlimited = true
	}
	return fi, nil
}

func fsTypeName(t int64) string {
	switch t {
	case tmpfsMagic:
		return "tmpfs"
	case ramfsMagic:
		return "ramfs"
	case 0xef53:
		return "ext2/3/4"
	case 0x794c7630:
		return "overlayfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	}
	return fmt.Sprintf("filesystem type %#x", t)
}

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
	word := (*uint32)(unsafe.Pointer(&mem[64]))
	return nil, probeFutex(word)
}

// probeFutex runs each futex operation the library uses once on word (a
// shared mapping): a wait on a value the word does not hold (returns at
// once), a wait that times out, and a wake.
func probeFutex(word *uint32) error {
	*word = 7
	if err := futex.Wait(word, 8, time.Millisecond); err != nil {
		return fmt.Errorf("wait on a changed value: %w", err)
	}
	if err := futex.Wait(word, 7, time.Millisecond); !errors.Is(err, futex.ErrTimeout) {
		return fmt.Errorf("wait with a timeout: got %v, want a timeout", err)
	}
	if _, err := futex.Wake(word, 1); err != nil {
		return fmt.Errorf("wake: %w", err)
	}
	return nil
}

// writable reports whether this process may create files in dir.
func writable(dir string) bool {
	return unix.Access(dir, unix.W_OK) == nil
}

// msgqueueLimit is RLIMIT_MSGQUEUE (bytes a user's queues may take).
func msgqueueLimit() (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &rl); err != nil {
		return 0, err
	}
	return rl.Cur, nil
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
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", "", "", false
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
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
