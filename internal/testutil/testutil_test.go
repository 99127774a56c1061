package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/shmchan/shmchan/mq"
)

// crashEnv makes a run of this test binary TestCrashing's child: a test
// process that makes a region and a queue under its prefix, prints their
// names, and dies as the value says (panic, kill, fail).
const crashEnv = "SHMCHAN_TESTUTIL_CRASH"

func TestMain(m *testing.M) {
	Main(m, Config{Prefix: "shmchan-testutil"})
}

// shmObject makes /dev/shm/name and removes it when the test ends.
func shmObject(t *testing.T, name string) string {
	t.Helper()
	path := shmDir + "/" + name
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}

// TestSweepKeepsOlder: a sweep removes the objects under its prefix made
// after it began, and leaves those that were there before (another,
// dead, process's that had the same pid) and those of other prefixes.
func TestSweepKeepsOlder(t *testing.T) {
	prefix := Prefix() + "unit-"
	old := shmObject(t, prefix+"old")
	l := newLeftovers(prefix)
	fresh := shmObject(t, prefix+"new")
	other := shmObject(t, Prefix()+"other")
	q := "/" + prefix + "queue"
	created, err := mq.Open(q, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	created.Close()
	t.Cleanup(func() { mq.Unlink(q) })
	l.queues = func() []string { return []string{queueName(q)} }
	removed := l.sweep()
	if want := []string{fresh, "message queue " + q}; strings.Join(removed, "|") != strings.Join(want, "|") {
		t.Errorf("sweep removed %q, want %q", removed, want)
	}
	for _, p := range []string{old, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("sweep removed %s: %v", p, err)
		}
	}
	if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there: %v", fresh, err)
	}
	if _, err := mq.Open(q, os.O_RDONLY, 0, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("queue %s is still there: %v", q, err)
	}
	if again := l.sweep(); len(again) != 0 {
		t.Errorf("a second sweep removed %q", again)
	}
}

// TestCrashing: a test process that panics, is SIGKILLed, or fails
// leaves nothing under its prefix: the watchdog (the first two) or Main
// (the last) removes the region and the queue it made, and nothing of
// this process's.
func TestCrashing(t *testing.T) {
	mine := shmObject(t, Prefix()+"parent")
	for _, how := range []string{"panic", "kill", "fail"} {
		t.Run(how, func(t *testing.T) {
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), crashEnv+"="+how, NoRaceExitDelay())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output() // returns once the watchdog, which shares stderr, is done too
			if err == nil {
				t.Fatalf("the child passed:\n%s", out)
			}
			var region, queue string
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "made" {
					region, queue = f[1], f[2]
				}
			}
			if region == "" {
				t.Fatalf("the child made nothing (%v):\n%s\n%s", err, out, stderr.Bytes())
			}
			if _, err := os.Stat(shmDir + "/" + region); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left behind: %v", region, err)
			}
			if q, err := mq.Open(queue, os.O_RDONLY, 0, nil); err == nil {
				q.Close()
				mq.Unlink(queue)
				t.Errorf("queue %s left behind", queue)
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("queue %s: %v", queue, err)
			}
			want := "testutil watchdog: the test process ended without cleaning up; removed [/dev/shm/" + region + " message queue " + queue + "]"
			if how == "fail" {
				want = "left in /dev/shm or /dev/mqueue (now removed): [/dev/shm/" + region + " message queue " + queue + "]"
			}
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("the child's stderr does not say %q:\n%s", want, stderr.Bytes())
			}
		})
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a child's sweep removed this process's %s: %v", mine, err)
	}
}

// TestCrashChild is TestCrashing's child (it skips unless crashEnv is set).
func TestCrashChild(t *testing.T) {
	how := os.Getenv(crashEnv)
	if how == "" {
		t.Skip("runs as TestCrashing's child")
	}
	region := Name(t) // no Remove: the child leaves it
	if err := os.WriteFile(shmDir+"/"+region, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	queue := "/" + Prefix() + "q"
	q, err := mq.Open(queue, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	TrackQueue(queue)
	Say("made %s %s", region, queue)
	switch how {
	case "panic":
		done := make(chan bool)
		go func() { panic("a test's goroutine panics") }()
		<-done
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		Hang()
	}
	t.Fatal("the test fails, leaving its objects")
}
