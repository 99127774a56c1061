package ctest_test

// python/shmchan.py, over the shared library of the README's build line:
// its own unit tests, and python/example_stage.py as a stage between two
// Go channels (Go sender → Python → Go receiver). Runs where python3 is
// installed.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shmchan/shmchan"
)

var libBuild struct {
	once sync.Once
	path string
	err  error
}

// sharedLib builds libshmchan.so with the README's build line, once.
func sharedLib(t *testing.T) string {
	t.Helper()
	cc := compiler(t, "cc")
	libBuild.once.Do(func() {
		out := filepath.Join(buildDir, "libshmchan.so")
		if b, err := exec.Command(cc, "-std=c11", "-O2", "-fPIC", "-shared", "-o", out, "../shmchan.c").CombinedOutput(); err != nil {
			libBuild.err = fmt.Errorf("building libshmchan.so: %v\n%s", err, b)
			return
		}
		libBuild.path = out
	})
	if libBuild.err != nil {
		t.Fatal(libBuild.err)
	}
	return libBuild.path
}

func python(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "SHMCHAN_LIB="+sharedLib(t), "PYTHONPATH=../../python",
		"SHMCHAN_TEST_PREFIX="+testPrefix()+"py-", "PYTHONDONTWRITEBYTECODE=1")
	return cmd
}

func TestPythonUnit(t *testing.T) {
	cmd := python(t, "../../python/test_shmchan.py")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python unit tests: %v\n%s", err, out)
	}
}

func TestPythonStage(t *testing.T) {
	n := count(20_000)
	in, out := testName(t), testName(t)
	src, err := shmchan.Create[[]byte](in, shmchan.WithCapacity(256), shmchan.WithMaxMessageSize(64))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := shmchan.Create[[]byte](out, shmchan.WithCapacity(256), shmchan.WithMaxMessageSize(64))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	cmd := python(t, "../../python/example_stage.py", in, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	ctx := ctxFor(t)
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			if err := src.Send(ctx, []byte(fmt.Sprintf("value %d of the stream", i))); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- src.CloseSend()
	}()
	for i := range n {
		v, err := dst.Recv(ctx)
		if err != nil {
			t.Fatalf("value %d: %v (python: %s)", i, err, stderr.String())
		}
		if want := fmt.Sprintf("VALUE %d OF THE STREAM", i); string(v) != want {
			t.Fatalf("value %d: %q, want %q", i, v, want)
		}
	}
	if _, err := dst.Recv(ctx); !errors.Is(err, shmchan.ErrClosed) {
		t.Fatalf("after the stream: %v, want ErrClosed (the stage closes its output)", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("python stage: %v\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("python stage did not exit")
	}
}

// TestPythonBroadcastLag: a Python DropOldest subscriber on a broadcast Go
// created and feeds, next to a Go subscriber: it gets one Lagged with the
// exact count, then the oldest intact values, as the Go one gets a
// *LagError with the same count.
func TestPythonBroadcastLag(t *testing.T) {
	const capacity, n = 16, 100
	name := testName(t)
	tx, err := shmchan.Create[[]byte](name, shmchan.WithBroadcast(shmchan.DropOldest), shmchan.WithCapacity(capacity),
		shmchan.WithMaxMessageSize(16))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	script := `
import sys, shmchan
with shmchan.Chan(sys.argv[1]) as rx:
    try:
        rx.recv(timeout=0)
    except shmchan.Empty:
        print("ready", flush=True)
    sys.stdin.readline()
    try:
        rx.recv(timeout=0)
    except shmchan.Lagged as e:
        print("lagged", e.missed)
    for v in rx:
        print(v.decode())
`
	cmd := python(t, "-c", script, name)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	rd := bufio.NewReader(out)
	if l, err := rd.ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("python: %q, %v\n%s", l, err, stderr.String())
	}
	gosub, err := shmchan.Open[[]byte](name)
	if err != nil {
		t.Fatal(err)
	}
	defer gosub.Close()
	if _, err := gosub.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
		t.Fatal(err)
	}
	for i := range n {
		if err := tx.TrySend([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.CloseSend(); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprint("lagged ", n-capacity)}
	for i := n - capacity; i < n; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if got := strings.TrimSpace(string(rest)); got != strings.Join(want, "\n") {
		t.Fatalf("python subscriber:\n%s\nwant\n%s\n%s", got, strings.Join(want, "\n"), stderr.String())
	}
	var lag *shmchan.LagError
	if _, err := gosub.TryRecv(); !errors.As(err, &lag) || lag.Missed != n-capacity {
		t.Fatalf("Go subscriber: %v, want a lag of %d", err, n-capacity)
	}
}
