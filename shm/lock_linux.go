package shm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"

	"golang.org/x/sys/unix"
)

// TryLock takes an exclusive open-file-description lock on the byte
// [off, off+1) without waiting. It returns false and no error if another
// open file description holds a conflicting lock, including another Object
// of the same process. Locking a byte this Object already holds succeeds
// again (locks do not nest: one Unlock releases it). The lock is released
// by Unlock, by Close, or by the kernel when the process dies.
func (o *Object) TryLock(off int64) (bool, error) {
	lk, err := lockRange(unix.F_WRLCK, off)
	if err != nil {
		return false, fmt.Errorf("shm: lock %s at %d: %w", o.path, off, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("lock"); err != nil {
		return false, err
	}
	err = fcntlLock(o.fd, unix.F_OFD_SETLK, &lk)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES):
		return false, nil
	}
	return false, fmt.Errorf("shm: lock %s at %d: %w", o.path, off, err)
}

// Unlock releases this Object's lock on the byte at off. Unlocking a byte
// that is not locked is not an error.
func (o *Object) Unlock(off int64) error {
	lk, err := lockRange(unix.F_UNLCK, off)
	if err != nil {
		return fmt.Errorf("shm: unlock %s at %d: %w", o.path, off, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("unlock"); err != nil {
		return err
	}
	if err := fcntlLock(o.fd, unix.F_OFD_SETLK, &lk); err != nil {
		return fmt.Errorf("shm: unlock %s at %d: %w", o.path, off, err)
	}
	return nil
}

// LockHeld reports whether some other open file description (another
// Object, in this process or another) holds a lock on the byte at off that
// would conflict with TryLock. This Object's own lock does not count. The
// answer can be stale as soon as it is returned.
func (o *Object) LockHeld(off int64) (bool, error) {
	lk, err := lockRange(unix.F_WRLCK, off)
	if err != nil {
		return false, fmt.Errorf("shm: test lock %s at %d: %w", o.path, off, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("test lock"); err != nil {
		return false, err
	}
	if err := fcntlLock(o.fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("shm: test lock %s at %d: %w", o.path, off, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// HeldRange reports which of the n bytes at [base, base+n) are locked by
// some other open file description (see LockHeld): held[i] is about byte
// base+i. F_OFD_GETLK over a range reports one conflicting lock in it, not
// necessarily the lowest, so the search splits the range around each lock
// found: one call per held run and per gap, not one per byte.
func (o *Object) HeldRange(base, n int64) ([]bool, error) {
	if base < 0 || n < 0 || base > math.MaxInt64-n {
		return nil, fmt.Errorf("shm: test locks %s: range [%d, +%d): %w", o.path, base, n, fs.ErrInvalid)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("test locks"); err != nil {
		return nil, err
	}
	held := make([]bool, n)
	todo := [][2]int64{{base, base + n}}
	for len(todo) > 0 {
		start, end := todo[len(todo)-1][0], todo[len(todo)-1][1]
		todo = todo[:len(todo)-1]
		if start >= end {
			continue
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: start, Len: end - start}
		if err := fcntlLock(o.fd, unix.F_OFD_GETLK, &lk); err != nil {
			return held, fmt.Errorf("shm: test locks %s: %w", o.path, err)
		}
		if lk.Type == unix.F_UNLCK {
			continue
		}
		lo, hi := max(lk.Start, start), end
		if lk.Len > 0 {
			hi = min(lk.Start+lk.Len, end)
		}
		if hi <= lo {
			return held, fmt.Errorf("shm: test locks %s: F_OFD_GETLK reported [%d, +%d) for [%d, %d)", o.path, lk.Start, lk.Len, start, end)
		}
		for i := lo; i < hi; i++ {
			held[i-base] = true
		}
		todo = append(todo, [2]int64{start, lo}, [2]int64{hi, end})
	}
	return held, nil
}

// lockRange describes the one-byte range at off. OFD locks require Pid 0.
func lockRange(typ int16, off int64) (unix.Flock_t, error) {
	if off < 0 || off == math.MaxInt64 {
		return unix.Flock_t{}, fmt.Errorf("offset %d out of range: %w", off, fs.ErrInvalid)
	}
	return unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: off, Len: 1}, nil
}

func fcntlLock(fd, cmd int, lk *unix.Flock_t) error {
	return ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(fd), cmd, lk) })
}
