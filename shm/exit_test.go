package shm

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

// sleeper starts a process that lives until killed, and returns it with
// its start time.
func sleeper(t *testing.T) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	start, err := ProcStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, start
}

func TestWatchExit(t *testing.T) {
	cmd, start := sleeper(t)
	exited := make(chan time.Time, 2)
	stop, err := WatchExit(cmd.Process.Pid, start, func() { exited <- time.Now() })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	select {
	case <-exited:
		t.Fatal("onExit ran while the process lives")
	case <-time.After(50 * time.Millisecond):
	}
	t0 := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-exited:
		t.Logf("onExit ran %v after the SIGKILL (before the parent reaped it)", at.Sub(t0))
	case <-time.After(10 * time.Second):
		t.Fatal("onExit did not run within 10 s of the SIGKILL")
	}
	stop()
	stop() // a second stop is harmless
	if len(exited) != 0 {
		t.Fatal("onExit ran twice")
	}
}

func TestWatchExitStopped(t *testing.T) {
	cmd, start := sleeper(t)
	var calls atomic.Int32
	stop, err := WatchExit(cmd.Process.Pid, start, func() { calls.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	stop()
	cmd.Process.Kill()
	cmd.Wait()
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Fatalf("onExit ran %d times after stop", n)
	}
}

func TestWatchExitNotThatProcess(t *testing.T) {
	cmd, start := sleeper(t)
	if _, err := WatchExit(cmd.Process.Pid, start+1, func() {}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("watch with another start time: %v, want fs.ErrNotExist", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := WatchExit(cmd.Process.Pid, start, func() {}); err == nil {
		t.Error("watch of a reaped pid: no error")
	}
	for _, pid := range []int{0, -1} {
		if _, err := WatchExit(pid, 0, func() {}); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("WatchExit(%d): %v, want fs.ErrInvalid", pid, err)
		}
	}
	if _, err := WatchExit(os.Getpid(), start, func() {}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("watch of this process with the sleeper's start time: %v", err)
	}
}
