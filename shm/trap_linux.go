package shm

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bus-error trap.
//
// A peer that shrinks the file under a mapping makes the kernel raise
// SIGBUS at the next access past the new end. Left to the Go runtime that
// is a fatal "unexpected fault address", or a panic if the goroutine has
// runtime/debug.SetPanicOnFault on, and turning that panic into an error
// needs a deferred recover in every call that touches the mapping: on the
// hot path that costs more than the ring operation itself (a defer, two
// runtime calls, a dozen stack stores that wait in the store buffer behind
// the stores to lines the peer holds).
//
// The trap removes the fault instead. It installs its own SIGBUS handler
// (trap_linux_amd64.s) in front of the runtime's: a bus error at an address
// inside a registered mapping replaces the faulting page and the rest of
// that mapping with private zero pages and sets the mapping's hit word; the
// faulting instruction then runs again and succeeds. Every other SIGBUS goes
// to the runtime's handler unchanged. The owner of the mapping checks the
// hit word after each operation ([Object.Hit]): once set, everything the
// mapping shows is zeros that no peer will ever see, and the operation must
// report the region corrupt.
//
// The runtime never reinstalls its SIGBUS handler after start-up (SIGBUS is
// not a signal os/signal can be notified of), so the trap stays in front
// unless other code (C code through cgo) installs a handler of its own.
// Where the trap cannot be installed (another architecture, the runtime's
// handler not in place, the table full) Object.Hit is nil and callers keep
// the SetPanicOnFault guard.
//
// Invariants:
//   - An entry's end and hit are written before its base (SYNC POINT "trap
//     entry", release half: an atomic store), and the handler reads the base
//     first; a base of 0 is a free entry.
//   - An entry is cleared (base 0) before its mapping is unmapped, under
//     trapMu, so the handler never remaps an address that is no longer the
//     mapping's (a fault there after unmap is already a use after unmap).
//   - trapTop only grows; entries at or above it are all free.

const trapEntries = 1024

type trapEntry struct {
	base, end uintptr
	hit       *uint32 // a Go pointer in a global: the collector keeps the word, the handler reads its address
}

var (
	trapOnce sync.Once
	trapOK   bool // the handler is installed
	//lint:ignore U1000 read by trapHandler (trap_linux_amd64.s)
	trapForward uintptr // the handler it replaced
	trapMu      sync.Mutex
	trapTop     uintptr // entries the handler scans
	trapTable   [trapEntries]trapEntry
)

// sigactiont is the kernel's struct sigaction on amd64 and arm64.
type sigactiont struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	saSiginfo  = 0x4
	saOnstack  = 0x08000000
	saRestorer = 0x04000000
)

func rtSigaction(sig int, act, old *sigactiont) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// installTrap puts trapHandler in front of the current SIGBUS handler, once
// per process. It declines when the current handler is not one that takes
// siginfo on the signal stack (the Go runtime's is), since then there is
// nothing to forward to with the same calling convention.
func installTrap() {
	if !trapArch {
		return
	}
	var old sigactiont
	if rtSigaction(int(unix.SIGBUS), nil, &old) != nil {
		return
	}
	const need = saSiginfo | saOnstack | saRestorer
	if old.handler < 2 || old.flags&need != need {
		return
	}
	trapForward = old.handler
	act := old
	act.handler = trapHandlerPC()
	if rtSigaction(int(unix.SIGBUS), &act, nil) != nil {
		return
	}
	trapOK = true
}

// trapRegister adds mem to the table and returns its hit word, or nil if
// the trap is not installed or the table is full.
func trapRegister(mem []byte) *uint32 {
	trapOnce.Do(installTrap)
	if !trapOK || len(mem) == 0 {
		return nil
	}
	trapMu.Lock()
	defer trapMu.Unlock()
	for i := range trapTable {
		e := &trapTable[i]
		if atomic.LoadUintptr(&e.base) != 0 {
			continue
		}
		hit := new(uint32)
		base := uintptr(unsafe.Pointer(&mem[0]))
		e.end, e.hit = base+uintptr(len(mem)), hit
		atomic.StoreUintptr(&e.base, base) // SYNC POINT "trap entry" (release half)
		if uintptr(i) >= atomic.LoadUintptr(&trapTop) {
			atomic.StoreUintptr(&trapTop, uintptr(i)+1)
		}
		return hit
	}
	return nil
}

// trapUnregister removes mem's entry; call it before unmapping mem.
func trapUnregister(mem []byte) {
	if !trapOK || len(mem) == 0 {
		return
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	trapMu.Lock()
	defer trapMu.Unlock()
	for i := range trapTable[:atomic.LoadUintptr(&trapTop)] {
		if e := &trapTable[i]; atomic.LoadUintptr(&e.base) == base {
			atomic.StoreUintptr(&e.base, 0) // hit stays until the entry is reused: the handler may still hold the entry
			return
		}
	}
}
