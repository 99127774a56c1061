package ctest_test

// The tests of the C header live in their own package, next to the C
// files, and use only the root package's public API (plus layout and codec
// for constants): they treat the Go library the way an outside program
// does, and stay clear of the root package's own tests. The C side is one
// program, testdata/peer.c, compiled once per run with the system's cc;
// without cc these tests fail (they do not skip): CI installs gcc.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/codec"
	"github.com/shmchan/shmchan/mq"
)

// cflags are the warnings every C build of these tests uses.
var cflags = []string{"-std=c11", "-Wall", "-Wextra", "-Werror"}

var (
	buildDir    string // peer binaries and libraries, removed by TestMain
	nameCounter atomic.Int64
	namesMu     sync.Mutex
	names       []string
)

func testPrefix() string { return fmt.Sprintf("shmchan-ctest-%d-", os.Getpid()) }

// testName returns a name unique to this process and removes the region
// and its doorbells when the test ends, whatever happened.
func testName(t testing.TB) string {
	name := fmt.Sprintf("%s%d", testPrefix(), nameCounter.Add(1))
	namesMu.Lock()
	names = append(names, name)
	namesMu.Unlock()
	t.Cleanup(func() { shmchan.Unlink(name) })
	return name
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shmchan-ctest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	// Start the runtime's poller before counting descriptors.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fds := countFDs()
	goroutines := runtime.NumGoroutine()
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "leaked %d goroutines:\n%s\n", n-goroutines, buf[:runtime.Stack(buf, true)])
			code = 1
		}
		if n := countFDs(); n > fds {
			fmt.Fprintf(os.Stderr, "leaked %d file descriptors\n", n-fds)
			code = 1
		}
		if b, _ := os.ReadFile("/proc/self/maps"); strings.Contains(string(b), " /dev/shm/") {
			fmt.Fprintln(os.Stderr, "mappings of /dev/shm objects left")
			code = 1
		}
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "left in /dev/shm or as message queues: %v\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func leftovers() []string {
	var left []string
	namesMu.Lock()
	defer namesMu.Unlock()
	for _, n := range names {
		for _, b := range []string{n + ".rx", n + ".tx"} {
			if mqExists(b) {
				left = append(left, "message queue /"+b)
			}
		}
	}
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), testPrefix()) {
			left = append(left, "/dev/shm/"+e.Name())
		}
	}
	return left
}

// mqExists reports whether the message queue /name exists.
func mqExists(name string) bool {
	q, err := mq.Open(name, os.O_RDONLY, 0, nil)
	if err != nil {
		return false
	}
	q.Close()
	return true
}

// compiler returns the path of cc, failing the test loudly without one.
func compiler(t testing.TB, name string) string {
	t.Helper()
	cc, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("no C compiler %q on PATH: the C header's tests need one (apt-get install gcc g++): %v", name, err)
	}
	return cc
}

var peerBuild struct {
	once sync.Once
	path string
	err  error
}

// peerBinary compiles testdata/peer.c with shmchan.c, once per run.
func peerBinary(t testing.TB) string {
	t.Helper()
	cc := compiler(t, "cc")
	peerBuild.once.Do(func() {
		out := filepath.Join(buildDir, "peer")
		args := append(append([]string{}, cflags...), "-O2", "-I..", "-o", out, "testdata/peer.c", "../shmchan.c")
		if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
			peerBuild.err = fmt.Errorf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
			return
		}
		peerBuild.path = out
	})
	if peerBuild.err != nil {
		t.Fatal(peerBuild.err)
	}
	return peerBuild.path
}

// peer is a running C peer process.
type peer struct {
	t     testing.TB
	cmd   *exec.Cmd
	lines chan string
	done  chan error
}

// startPeer runs the C peer in mode with key=value arguments; it is killed
// and reaped when the test ends.
func startPeer(t testing.TB, mode string, args ...string) *peer {
	t.Helper()
	return startPeerCmd(t, exec.Command(peerBinary(t), append([]string{mode}, args...)...))
}

func startPeerCmd(t testing.TB, cmd *exec.Cmd) *peer {
	t.Helper()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, cmd: cmd, lines: make(chan string, 1<<20), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(p.kill)
	return p
}

// expect waits for a line starting with prefix and returns it; a line
// starting with "error" fails the test.
func (p *peer) expect(prefix string) string {
	p.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("C peer exited before printing %q: %v", prefix, p.wait())
			}
			if strings.HasPrefix(l, "error") {
				p.t.Fatalf("C peer: %s", l)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			p.t.Fatalf("C peer did not print %q within a minute", prefix)
		}
	}
}

// wait waits for the peer to exit and returns its error.
func (p *peer) wait() error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(2 * time.Minute):
		p.kill()
		return fmt.Errorf("C peer did not exit within two minutes")
	}
}

// finish waits for a clean exit and returns the lines not yet read.
func (p *peer) finish() []string {
	p.t.Helper()
	var rest []string
	for l := range p.lines {
		rest = append(rest, l)
	}
	if err := p.wait(); err != nil {
		p.t.Fatalf("C peer: %v (output %q)", err, rest)
	}
	return rest
}

// kill SIGKILLs the peer and reaps it.
func (p *peer) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
	}
}

// rec is the raw value of the tests, the same struct as peer.c's: a
// sequence number (the producer in its top bits) and a check word.
type rec struct {
	Seq uint64
	Sum uint64
}

func mix(i uint64) uint64       { return i*0x9E3779B97F4A7C15 ^ 0x5bd1e995 }
func mkrec(seq uint64) rec      { return rec{Seq: seq, Sum: mix(seq)} }
func (r rec) ok() bool          { return r.Sum == mix(r.Seq) }
func seqOf(id, i uint64) uint64 { return id<<40 | i }

// recFingerprint is the Go fingerprint of rec, handed to C to create a raw
// channel Go opens as Chan[rec].
func recFingerprint(t testing.TB) uint64 {
	fp, err := codec.RawFingerprint(reflect.TypeFor[rec]())
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// encodeBytes and decodeBytes are peer.c's "bytes" values: 8 bytes of seq,
// then seq % 50 filler bytes.
func encodeBytes(seq uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	for j := uint64(0); j < seq%50; j++ {
		b = append(b, byte(seq+j))
	}
	return b
}

func decodeBytes(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	seq := binary.LittleEndian.Uint64(b)
	if uint64(len(b)) != 8+seq%50 {
		return 0, false
	}
	for j := uint64(0); j < seq%50; j++ {
		if b[8+j] != byte(seq+j) {
			return 0, false
		}
	}
	return seq, true
}

// count trims a value count under -short (the race detector's run).
func count(n int) int {
	if testing.Short() {
		return n / 5
	}
	return n
}
