package mq_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/mq"
)

// helperEnv marks a re-run of the test binary as a helper process; its value
// is the helper's mode (see TestHelperProcess).
const helperEnv = "SHMCHAN_MQ_HELPER"

// exampleName is the queue the notification example uses; TestMain checks it
// is gone too.
var exampleName = fmt.Sprintf("/shmchan-test-%d-example", os.Getpid())

// TestMain runs the helper processes (TestHelperProcess), and checks that
// the tests leaked nothing: queues (tracked by name, and in /dev/mqueue if
// it is mounted), descriptors, goroutines (testutil.Main).
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run())
	}
	mq.Track = testutil.TrackQueue
	mq.TrackName(exampleName)
	testutil.Main(m, testutil.Config{Prefix: "shmchan-test", Teardown: removeHelperBinary})
}

// --- helper processes ---

// helper describes one run of the test binary as a helper process.
type helper struct {
	mode  string
	env   map[string]string
	other bool      // run as another, unprivileged user (needs root)
	stdin io.Reader // nil: no input
}

// otherUID is the unprivileged user helpers run as when the tests run as root.
const otherUID = 65534

var (
	helperBinOnce sync.Once
	helperBin     string // a world-executable copy of the test binary
	helperBinDir  string
	helperBinErr  error
)

// unprivilegedBinary returns a copy of the test binary that another user can
// execute: go test builds it in a directory only the owner may enter.
func unprivilegedBinary() (string, error) {
	helperBinOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			helperBinErr = err
			return
		}
		dir, err := os.MkdirTemp("", "shmchan-mq-helper-")
		if err != nil {
			helperBinErr = err
			return
		}
		helperBinDir = dir
		if err := os.Chmod(dir, 0o755); err != nil {
			helperBinErr = err
			return
		}
		src, err := os.ReadFile(exe)
		if err != nil {
			helperBinErr = err
			return
		}
		bin := filepath.Join(dir, "mq.test")
		if err := os.WriteFile(bin, src, 0o755); err != nil {
			helperBinErr = err
			return
		}
		helperBin = bin
	})
	return helperBin, helperBinErr
}

func removeHelperBinary() {
	if helperBinDir != "" {
		os.RemoveAll(helperBinDir)
	}
}

// command builds the exec.Cmd of a helper run.
func (h helper) command(ctx context.Context, tb testing.TB) *exec.Cmd {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	var cred *syscall.Credential
	if h.other {
		if os.Geteuid() != 0 {
			tb.Fatal("helper as another user needs root")
		}
		if exe, err = unprivilegedBinary(); err != nil {
			tb.Fatalf("copying the test binary for user %d: %v", otherUID, err)
		}
		cred = &syscall.Credential{Uid: otherUID, Gid: otherUID}
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+h.mode,
		// A race-enabled binary otherwise sleeps a second on exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	cmd.Stdin = h.stdin
	cmd.Stderr = &tbWriter{tb: tb, prefix: "helper " + h.mode + ": "}
	cmd.WaitDelay = time.Second
	return cmd
}

// run runs the helper to completion and returns the key=value lines it
// printed.
func (h helper) run(tb testing.TB) map[string]string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := h.command(ctx, tb)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("helper %s: %v\nstdout: %s", h.mode, err, out.String())
	}
	return parseKV(out.String())
}

func parseKV(s string) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// tbWriter forwards a helper's stderr to the test log.
type tbWriter struct {
	tb     testing.TB
	prefix string
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestHelperProcess is not a test: it is the body of the helper processes
// the other tests start, selected by SHMCHAN_MQ_HELPER.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("runs only as a helper process")
	}
	err := runHelperMode(mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(0)
}

func runHelperMode(mode string) error {
	name := os.Getenv("SHMCHAN_MQ_NAME")
	switch mode {
	case "send":
		// Send SHMCHAN_MQ_MSGS ("prio:text,prio:text") in order, blocking
		// while full, after an optional line on stdin and SHMCHAN_MQ_DELAY.
		q, err := mq.Open(name, os.O_WRONLY, 0, nil)
		if err != nil {
			return err
		}
		defer q.Close()
		if err := waitCue(); err != nil {
			return err
		}
		for _, m := range strings.Split(os.Getenv("SHMCHAN_MQ_MSGS"), ",") {
			ps, text, _ := strings.Cut(m, ":")
			prio, err := strconv.Atoi(ps)
			if err != nil {
				return err
			}
			if err := q.Send(context.Background(), []byte(text), uint(prio)); err != nil {
				return err
			}
		}
		return nil

	case "recv":
		// Receive SHMCHAN_MQ_COUNT messages and print them.
		q, err := mq.Open(name, os.O_RDONLY, 0, nil)
		if err != nil {
			return err
		}
		defer q.Close()
		if err := waitCue(); err != nil {
			return err
		}
		count, _ := strconv.Atoi(os.Getenv("SHMCHAN_MQ_COUNT"))
		buf := make([]byte, q.MsgSize())
		for i := range count {
			n, prio, err := q.Receive(context.Background(), buf)
			if err != nil {
				return err
			}
			fmt.Printf("msg%d=%d:%s\n", i, prio, buf[:n])
		}
		return nil

	case "open":
		// Try to open (or create) a queue and report how it went.
		if v := os.Getenv("SHMCHAN_MQ_RLIMIT"); v != "" {
			lim, _ := strconv.ParseUint(v, 10, 64)
			var rl unix.Rlimit
			if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &rl); err != nil {
				return err
			}
			rl.Cur = lim
			if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &rl); err != nil {
				return err
			}
		}
		flag, _ := strconv.Atoi(os.Getenv("SHMCHAN_MQ_FLAG"))
		var attr *mq.Attr
		if v := os.Getenv("SHMCHAN_MQ_ATTR"); v != "" {
			a, b, _ := strings.Cut(v, "x")
			maxMsg, _ := strconv.ParseInt(a, 10, 64)
			msgSize, _ := strconv.ParseInt(b, 10, 64)
			attr = &mq.Attr{MaxMsg: maxMsg, MsgSize: msgSize}
		}
		q, err := mq.Open(name, flag, 0o600, attr)
		fmt.Printf("uid=%d\n", os.Geteuid())
		if lim, lerr := mq.UserLimit(); lerr == nil {
			fmt.Printf("userlimit=%d\n", lim)
		}
		if err == nil {
			fmt.Println("ok=true")
			return q.Close()
		}
		fmt.Printf("ok=false\nerr=%v\n", err)
		fmt.Printf("exist=%v\nnotexist=%v\npermission=%v\nlimit=%v\n",
			errors.Is(err, fs.ErrExist), errors.Is(err, fs.ErrNotExist),
			errors.Is(err, fs.ErrPermission), errors.Is(err, mq.ErrLimit))
		return nil

	case "notify":
		// Try to register for notification and report how it went.
		q, err := mq.Open(name, os.O_RDONLY, 0, nil)
		if err != nil {
			return err
		}
		defer q.Close()
		err = q.Notify(syscall.SIGUSR2)
		if err == nil {
			fmt.Println("ok=true")
			return q.StopNotify()
		}
		fmt.Printf("ok=false\nerr=%v\nbusy=%v\n", err, errors.Is(err, mq.ErrNotifyBusy))
		return nil

	case "echo":
		// Receive on SHMCHAN_MQ_NAME and send each message back on
		// SHMCHAN_MQ_NAME2 until "quit".
		in, err := mq.Open(name, os.O_RDONLY, 0, nil)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := mq.Open(os.Getenv("SHMCHAN_MQ_NAME2"), os.O_WRONLY, 0, nil)
		if err != nil {
			return err
		}
		defer out.Close()
		buf := make([]byte, in.MsgSize())
		for {
			n, prio, err := in.Receive(context.Background(), buf)
			if err != nil {
				return err
			}
			if string(buf[:n]) == "quit" {
				return nil
			}
			if err := out.Send(context.Background(), buf[:n], prio); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

// waitCue waits for a line on stdin if SHMCHAN_MQ_CUE is set, then for
// SHMCHAN_MQ_DELAY.
func waitCue() error {
	if os.Getenv("SHMCHAN_MQ_CUE") != "" {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("waiting for the cue: %w", err)
		}
	}
	if v := os.Getenv("SHMCHAN_MQ_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		time.Sleep(d)
	}
	return nil
}
