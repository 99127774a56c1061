package ctest_test

// python/shmchan.py, over the shared library of the README's build line:
// its own unit tests, and python/example_stage.py as a stage between two
// Go channels (Go sender → Python → Go receiver). Runs where python3 is
// installed.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
