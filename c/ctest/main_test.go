package ctest_test

// The tests of the C header live in their own package, next to the C
// files, and use only the root package's public API (plus layout and codec
// for constants): they treat the Go library the way an outside program
// does, and stay clear of the root package's own tests. The C side is one
// program, testdata/peer.c, compiled once per run with the system's cc;
// without cc these tests fail (they do not skip): CI installs gcc.

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/codec"
	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/mq"
)

// cflags are the warnings every C build of these tests uses.
var cflags = []string{"-std=c11", "-Wall", "-Wextra", "-Werror"}

var buildDir string // peer binaries and libraries, removed by TestMain

func testPrefix() string { return testutil.Prefix() }

// testName returns a name unique to this process and removes the region
// and its doorbells when the test ends, whatever happened.
func testName(t testing.TB) string { return testutil.Name(t) }

// testChan creates a channel of T with opts at a fresh name (testName); it
// is closed when the test ends.
func testChan[T any](t *testing.T, opts ...shmchan.Option) (string, *shmchan.Chan[T]) {
	t.Helper()
	name := testName(t)
	c, err := shmchan.Create[T](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return name, c
}

// TestMain makes buildDir, and checks that the tests leaked nothing
// (testutil.Main).
func TestMain(m *testing.M) {
	testutil.Main(m, testutil.Config{
		Prefix: "shmchan-ctest",
		Bells:  func(name string) []string { return []string{name + ".rx", name + ".tx"} },
		Remove: func(_ testing.TB, name string) { shmchan.Unlink(name) },
		Setup: func() error {
			dir, err := os.MkdirTemp("", "shmchan-ctest-")
			buildDir = dir
			return err
		},
		Teardown: func() { os.RemoveAll(buildDir) },
	})
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
type peer = testutil.Proc

// startPeer runs the C peer in mode with key=value arguments; it is killed
// and reaped when the test ends.
func startPeer(t testing.TB, mode string, args ...string) *peer {
	t.Helper()
	return startPeerCmd(t, exec.Command(peerBinary(t), append([]string{mode}, args...)...))
}

// startPeerCmd starts a peer; a line of it that starts with "error" fails
// the test.
func startPeerCmd(t testing.TB, cmd *exec.Cmd) *peer {
	t.Helper()
	return testutil.Start(t, cmd, testutil.ProcOptions{What: "C peer", Buffer: 1 << 20, FailPrefix: "error"})
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
