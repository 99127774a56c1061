package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan/internal/testutil"
)

func TestLocksConflictWithinProcess(t *testing.T) {
	name := uniqueName(t)
	a := mustCreate(t, name, 4096, Options{})
	b := mustOpen(t, name, Options{})
	const off = 1 << 40 // far beyond the end of the file

	mustTry := func(o *Object, off int64, want bool) {
		t.Helper()
		got, err := o.TryLock(off)
		if err != nil || got != want {
			t.Fatalf("TryLock(%d) = %v, %v; want %v", off, got, err, want)
		}
	}
	mustHeld := func(o *Object, off int64, want bool) {
		t.Helper()
		got, err := o.LockHeld(off)
		if err != nil || got != want {
			t.Fatalf("LockHeld(%d) = %v, %v; want %v", off, got, err, want)
		}
	}

	mustHeld(b, off, false)
	mustTry(a, off, true)
	mustTry(a, off, true) // taking it again is fine
	mustTry(b, off, false)
	mustHeld(b, off, true)
	mustHeld(a, off, false) // its own lock does not count
	mustTry(b, off+1, true) // a neighbouring byte is independent
	mustTry(b, off-1, true)
	mustTry(a, off+1, false)

	if err := a.Unlock(off); err != nil {
		t.Fatal(err)
	}
	mustHeld(b, off, false)
	mustTry(b, off, true)
	mustTry(a, off, false)
	if err := a.Unlock(12345); err != nil {
		t.Errorf("Unlock of a byte not held: %v", err)
	}

	// Close releases everything b holds.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	mustTry(a, off, true)
	mustTry(a, off+1, true)
	mustTry(a, off-1, true)
}

func TestLockBadOffset(t *testing.T) {
	name := uniqueName(t)
	a := mustCreate(t, name, 64, Options{})
	for _, off := range []int64{-1, 1<<63 - 1} {
		if _, err := a.TryLock(off); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("TryLock(%d): %v", off, err)
		}
		if _, err := a.LockHeld(off); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("LockHeld(%d): %v", off, err)
		}
		if err := a.Unlock(off); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Unlock(%d): %v", off, err)
		}
	}
}

const (
	helperNameEnv = "SHMCHAN_SHM_HELPER_NAME"
	helperOffEnv  = "SHMCHAN_SHM_HELPER_OFF"
)

// TestHelperProcess is not a test: it is the body of the helper process
// that other tests start by re-running this binary with helperEnv=1. It
// takes the lock named in the environment, says "locked", and sleeps until
// it is killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("runs only as a helper process")
	}
	off, err := strconv.ParseInt(os.Getenv(helperOffEnv), 10, 64)
	if err != nil {
		fmt.Println("bad offset:", err)
		os.Exit(2)
	}
	obj, err := Open(os.Getenv(helperNameEnv), Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ok, err := obj.TryLock(off)
	if err != nil || !ok {
		fmt.Println("lock:", ok, err)
		os.Exit(2)
	}
	fmt.Println("locked")
	time.Sleep(2 * time.Minute) // the parent kills us long before
	os.Exit(3)
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	name := uniqueName(t)
	obj := mustCreate(t, name, 4096, Options{})
	const off = 4096 + 7

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperNameEnv+"="+name, helperOffEnv+"="+strconv.Itoa(off))
	h := testutil.Start(t, cmd, testutil.ProcOptions{Buffer: 16})
	h.Expect("locked")

	if held, err := obj.LockHeld(off); err != nil || !held {
		t.Fatalf("LockHeld while the helper holds it = %v, %v", held, err)
	}
	if ok, err := obj.TryLock(off); err != nil || ok {
		t.Fatalf("TryLock while the helper holds it = %v, %v", ok, err)
	}

	h.Signal(syscall.SIGKILL)
	err = h.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed by SIGKILL", err)
	}

	if held, err := obj.LockHeld(off); err != nil || held {
		t.Errorf("LockHeld after the holder died = %v, %v", held, err)
	}
	if ok, err := obj.TryLock(off); err != nil || !ok {
		t.Errorf("TryLock after the holder died = %v, %v", ok, err)
	}
}
