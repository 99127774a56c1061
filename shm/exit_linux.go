package shm

import (
	"fmt"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// WatchExit calls onExit once process pid exits, provided it is the process
// that started at start (ProcStartTime; a pid since reused by another
// process is not watched). It waits on a pidfd through the runtime's poller,
// so a watch costs one descriptor and one parked goroutine, no thread and no
// polling. stop ends the watch: once it returns, onExit is not running and
// will not run. An error means there is no watch (pidfd_open failed, the
// process is gone, or the pid is another process's: fs.ErrNotExist); a
// caller that uses watches only to wake sooner than a bounded sleep would
// simply goes on without one.
//
// The identity check reads /proc in this process's pid namespace: a peer
// in another namespace is normally not matched, and not watched.
func WatchExit(pid int, start uint64, onExit func()) (stop func(), err error) {
	if pid <= 0 {
		return nil, fmt.Errorf("shm: watch pid %d: %w", pid, fs.ErrInvalid)
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("shm: watch pid %d: pidfd_open: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	// The pidfd names whatever process had the pid at pidfd_open; the start
	// time read after it tells whether that is still the one asked for (if
	// it died and the pid was reused in between, the times differ).
	if got, err := ProcStartTime(pid); err != nil || got != start {
		f.Close()
		return nil, fmt.Errorf("shm: watch pid %d: not the process that started at tick %d: %w", pid, start, fs.ErrNotExist)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: watch pid %d: %w", pid, err)
	}
	var (
		mu      sync.Mutex
		stopped bool
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		// Read calls the function, and while it returns false waits for
		// the pidfd to be readable (the process exited). Close ends the
		// wait with an error.
		if err := rc.Read(func(fd uintptr) bool { return exited(int(fd)) }); err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			onExit()
		}
	}()
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		f.Close()
		<-done
	}, nil
}

// exited reports whether the process behind pidfd fd has exited: the pidfd
// polls readable then.
func exited(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err == nil && n == 1 && p[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0
}
