package futex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmchan/shmchan/internal/testutil"
	"golang.org/x/sys/unix"
)

// helperEnv marks a run of the test binary as a helper process and names
// what it should do; helperPathEnv passes it the shared file.
const (
	helperEnv     = "SHMCHAN_FUTEX_HELPER"
	helperPathEnv = "SHMCHAN_FUTEX_HELPER_PATH"

	modeUnregistered = "unregistered"
	modeWaiter       = "waiter"
)

// Offsets of the words in the shared file.
const (
	readyOff = 0  // the helper sets it to 1 before it starts waiting
	wordOff  = 64 // the futex word, on its own cache line
	wakeVal  = 42 // the value that lets the helper exit
)

// TestMain runs the helper processes (TestHelperProcess), and checks that
// the tests leaked nothing (testutil.Main).
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run())
	}
	testutil.Main(m, testutil.Config{Prefix: "shmchan-test"})
}

// TestHelperProcess is not a test: it is the body of helper processes that
// other tests start by re-running this binary with helperEnv set.
func TestHelperProcess(t *testing.T) {
	var code int
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		t.Skip("runs only as a helper process")
	case modeUnregistered:
		code = helperUnregistered()
	case modeWaiter:
		code = helperWaiter(os.Getenv(helperPathEnv))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		code = 2
	}
	os.Exit(code)
}

// helper is a running helper process.
type helper struct {
	done chan struct{} // closed when it has exited
	err  error         // its exit error, valid once done is closed
	out  syncBuffer    // its stdout and stderr
}

// syncBuffer is a bytes.Buffer that the exec package's copying goroutine
// and the test may use at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startHelper starts the test binary as a helper in the given mode. The
// helper is killed if it is still running when the test ends.
func startHelper(t *testing.T, mode string, env []string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	// No race-detector exit delay in the helper.
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	h := &helper{done: make(chan struct{})}
	cmd.Stdout = &h.out
	cmd.Stderr = &h.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		h.err = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		cancel() // kills the helper if it still runs
		<-h.done
	})
	return h
}

func runHelper(t *testing.T, mode string, env []string) (string, error) {
	t.Helper()
	h := startHelper(t, mode, env)
	<-h.done
	return h.out.String(), h.err
}

// mapShared creates a 4 KiB file in /dev/shm and maps it shared; the test
// removes both when it ends.
func mapShared(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join("/dev/shm", testutil.Name(t))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		os.Remove(path)
	})
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return path, mem
}

func wordAt(mem []byte, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

// TestCrossProcessWake: a helper process sleeps on a word of a shared
// mapping; this process wakes it through its own mapping of the same file.
func TestCrossProcessWake(t *testing.T) {
	path, mem := mapShared(t)
	ready, w := wordAt(mem, readyOff), wordAt(mem, wordOff)
	h := startHelper(t, modeWaiter, []string{helperPathEnv + "=" + path})

	deadline := time.Now().Add(30 * time.Second)
	for atomic.LoadUint32(ready) != 1 {
		select {
		case <-h.done:
			t.Fatalf("helper ended before waiting: %v\n%s", h.err, h.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("helper did not start waiting within 30s")
		}
		time.Sleep(time.Millisecond)
	}
	// Wake without changing the word until a Wake reports that it woke
	// the helper: that proves the helper slept on the same futex, found
	// through another process's mapping. The helper goes back to sleep
	// after each such wake because the word is unchanged.
	wakeUntil(t, w, 1, 1)

	atomic.StoreUint32(w, wakeVal)
	if _, err := Wake(w, All); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.done:
		if h.err != nil {
			t.Fatalf("helper: %v\n%s", h.err, h.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("helper not done 30s after the wake\n%s", h.out.String())
	}
	t.Logf("helper: %s", strings.TrimSpace(h.out.String()))
}

func helperWaiter(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer unix.Munmap(mem)
	ready, w := wordAt(mem, readyOff), wordAt(mem, wordOff)

	atomic.StoreUint32(ready, 1)
	deadline := time.Now().Add(time.Minute)
	returns := 0
	for {
		v := atomic.LoadUint32(w)
		if v == wakeVal {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "never woken with", wakeVal)
			return 3
		}
		err := Wait(w, v, 5*time.Second)
		if err != nil && !errors.Is(err, ErrTimeout) {
			fmt.Fprintln(os.Stderr, "wait:", err)
			return 4
		}
		returns++
	}
	fmt.Println("woken; Wait returned " + strconv.Itoa(returns) + " times")
	return 0
}
