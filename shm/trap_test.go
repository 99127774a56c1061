package shm

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestTrapLayout pins the entry layout that trap_linux_amd64.s reads.
func TestTrapLayout(t *testing.T) {
	var e trapEntry
	if unsafe.Offsetof(e.base) != 0 || unsafe.Offsetof(e.end) != 8 || unsafe.Offsetof(e.hit) != 16 || unsafe.Sizeof(e) != 24 {
		t.Fatalf("trapEntry layout: base %d end %d hit %d size %d, the handler wants 0 8 16 24",
			unsafe.Offsetof(e.base), unsafe.Offsetof(e.end), unsafe.Offsetof(e.hit), unsafe.Sizeof(e))
	}
	// The kernel's struct sigaction (amd64, arm64): handler, flags,
	// restorer, an 8-byte mask.
	var a sigactiont
	if unsafe.Offsetof(a.flags) != 8 || unsafe.Offsetof(a.restorer) != 16 || unsafe.Offsetof(a.mask) != 24 || unsafe.Sizeof(a) != 32 {
		t.Fatalf("sigactiont layout: flags %d restorer %d mask %d size %d, the kernel wants 8 16 24 32",
			unsafe.Offsetof(a.flags), unsafe.Offsetof(a.restorer), unsafe.Offsetof(a.mask), unsafe.Sizeof(a))
	}
}

func trapped(t *testing.T) {
	t.Helper()
	if !trapArch {
		t.Skipf("no bus-error trap on %s", runtime.GOARCH)
	}
}

// shrink truncates o's file to size through a second descriptor, as a
// peer would.
func shrink(t *testing.T, o *Object, size int64) {
	t.Helper()
	if err := os.Truncate(o.Path(), size); err != nil {
		t.Fatal(err)
	}
}

// TestTrapTruncated: after a peer shrinks the file, touching the mapping
// past the new end reads zeros and writes go nowhere, instead of SIGBUS;
// the mapping's hit word says so; the part still backed by the file is
// the file's; the mapping unmaps cleanly.
func TestTrapTruncated(t *testing.T) {
	trapped(t)
	const size = 4 * 4096
	o, err := Create(uniqueName(t), size, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(o.Name())
	defer o.Close()
	mem, err := o.Map(size)
	if err != nil {
		t.Fatal(err)
	}
	hit := o.Hit()
	if hit == nil {
		t.Fatal("Hit is nil: the trap is not installed")
	}
	for i := range mem {
		mem[i] = 0xa5
	}
	shrink(t, o, 4096)
	if atomic.LoadUint32(hit) != 0 {
		t.Fatal("hit before any access past the end")
	}
	if mem[100] != 0xa5 {
		t.Fatalf("page 0 (still in the file) reads %#x", mem[100])
	}
	if v := atomic.AddUint64((*uint64)(unsafe.Pointer(&mem[2*4096+8])), 1); v != 1 { // an atomic read-modify-write, as the ring does
		t.Fatalf("past the end: atomic add gave %d, want 1 (zero page + 1)", v)
	}
	if atomic.LoadUint32(hit) != 1 {
		t.Fatal("hit word not set by the fault")
	}
	if mem[4096] != 0 || mem[size-1] != 0 {
		t.Fatalf("pages after the fault read %#x %#x, want zeros", mem[4096], mem[size-1])
	}
	mem[size-1] = 7 // a write lands in the private page
	if mem[size-1] != 7 {
		t.Fatal("write to the private page lost")
	}
	if fi, err := os.Stat(o.Path()); err != nil || fi.Size() != 4096 {
		t.Fatalf("the file: %v, %v (want 4096 bytes: the trap must not grow it)", fi, err)
	}
	if err := o.Unmap(); err != nil {
		t.Fatal(err)
	}
}

// TestTrapForwards: a bus error outside every registered mapping still
// reaches the Go runtime as before: a panic under SetPanicOnFault (here), a
// fatal fault without it (TestTrapForwardsFatal).
func TestTrapForwards(t *testing.T) {
	trapped(t)
	o, err := Create(uniqueName(t), 2*4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(o.Name())
	defer o.Close()
	if _, err := o.Map(4096); err != nil { // installs the trap
		t.Fatal(err)
	}
	// A mapping the trap does not know, of the same file.
	mem, err := unix.Mmap(o.Fd(), 0, 2*4096, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	shrink(t, o, 0)
	var got any
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { got = recover() }()
		trapSink = mem[4096+1]
	}()
	f, ok := got.(interface{ Addr() uintptr })
	if !ok {
		t.Fatalf("recovered %v (%T), want the runtime's fault panic", got, got)
	}
	if want := uintptr(unsafe.Pointer(&mem[4096+1])); f.Addr() != want {
		t.Fatalf("fault at %#x, want %#x", f.Addr(), want)
	}
	if h := o.Hit(); atomic.LoadUint32(h) != 0 {
		t.Fatal("the registered mapping's hit word was set by a fault elsewhere")
	}
}

var trapSink byte

const trapChildEnv = "SHMCHAN_TRAP_CHILD"

// TestTrapForwardsFatal: without SetPanicOnFault, a bus error in an
// unregistered mapping still kills the process the runtime's way
// ("unexpected fault address", exit status 2), in a child process.
func TestTrapForwardsFatal(t *testing.T) {
	trapped(t)
	if name := os.Getenv(trapChildEnv); name != "" {
		o, err := Open(name, Options{})
		if err != nil {
			os.Exit(3)
		}
		if _, err := o.Map(4096); err != nil {
			os.Exit(4)
		}
		mem, err := unix.Mmap(o.Fd(), 0, 2*4096, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			os.Exit(5)
		}
		shrink(t, o, 0)
		println(mem[4096+1])
		os.Exit(6) // not reached
	}
	o, err := Create(uniqueName(t), 2*4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(o.Name())
	defer o.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrapForwardsFatal$")
	cmd.Env = append(os.Environ(), trapChildEnv+"="+o.Name(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "unexpected fault address") {
		t.Fatalf("child: %v, output:\n%s", err, out)
	}
}

// TestTrapTableFull: past trapEntries registered mappings, a new one gets
// no hit word (its owner keeps the guard), and an unregistered entry is
// used again.
func TestTrapTableFull(t *testing.T) {
	trapped(t)
	trapOnce.Do(installTrap)
	if !trapOK {
		t.Fatal("the trap is not installed")
	}
	var mine [][]byte
	defer func() {
		for _, m := range mine {
			trapUnregister(m)
		}
	}()
	for {
		m := make([]byte, 8) // stands in for a mapping: the table only compares addresses
		if trapRegister(m) == nil {
			break
		}
		mine = append(mine, m)
		if len(mine) > trapEntries {
			t.Fatalf("%d entries registered, the table has %d", len(mine), trapEntries)
		}
	}
	if len(mine) == 0 {
		t.Fatal("nothing registered")
	}
	trapUnregister(mine[0])
	m := make([]byte, 8)
	if trapRegister(m) == nil {
		t.Fatal("a freed entry was not used again")
	}
	mine[0] = m
}

// TestTrapStaysInstalled: the runtime leaves a SIGBUS handler alone after
// start-up, also when the program asks os/signal for SIGBUS (it cannot be
// notified of it) or ignores and resets it, so the trap stays in front.
func TestTrapStaysInstalled(t *testing.T) {
	trapped(t)
	trapOnce.Do(installTrap)
	if !trapOK {
		t.Fatal("the trap is not installed")
	}
	current := func() uintptr {
		var cur sigactiont
		if err := rtSigaction(int(unix.SIGBUS), nil, &cur); err != nil {
			t.Fatal(err)
		}
		return cur.handler
	}
	if h := current(); h != trapHandlerPC() {
		t.Fatalf("SIGBUS handler %#x, want the trap's %#x", h, trapHandlerPC())
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, unix.SIGBUS)
	if h := current(); h != trapHandlerPC() {
		t.Errorf("after signal.Notify(SIGBUS): handler %#x, want the trap's", h)
	}
	signal.Stop(c)
	signal.Reset(unix.SIGBUS)
	if h := current(); h != trapHandlerPC() {
		t.Errorf("after signal.Stop and Reset: handler %#x, want the trap's", h)
	}
}
