// Package futex is the sleeping and waking half of shmchan's waiting
// strategy: Linux futex(2) wait and wake on a 32-bit word that lives in a
// MAP_SHARED mapping used by several processes, and the membarrier(2)
// "asymmetric fence" that lets a publisher skip a full fence on its fast
// path.
//
// # The futex contract
//
// [Wait](addr, val, timeout) atomically checks that *addr still equals val
// and, if so, sleeps until a [Wake] on the same word, the timeout, or a
// signal. [Wake](addr, n) wakes up to n sleepers of that word and reports how
// many it woke. The word itself is the caller's: the kernel only compares it,
// it never changes it.
//
// Spurious wakeups are allowed and expected. Wait returns nil when it was
// woken, when *addr did not equal val to begin with (EAGAIN), when a signal
// interrupted it (EINTR; the Go runtime signals its threads, for instance
// for preemption), and after a Wake that was meant for another waiter of the
// same word. Callers therefore always wait in a loop that re-reads their
// condition with sync/atomic:
//
//	for {
//		v := atomic.LoadUint32(word)
//		if ready(v) {
//			break
//		}
//		if err := futex.Wait(word, v, remaining); err != nil {
//			return err // futex.ErrTimeout, or a misuse
//		}
//	}
//
// Passing the value just read (v) as val is what closes the race with a
// waker: if the word changed between the load and the sleep, the kernel sees
// the difference and Wait returns at once.
//
// Shared, not private. These futexes are process-shared: no
// FUTEX_PRIVATE_FLAG. For a word in a shared file mapping the kernel keys the
// futex by the file page and the offset in it, so two processes that mapped
// the same /dev/shm object, even at different virtual addresses, meet on
// the same futex. A private futex is keyed by the address space and virtual
// address instead: it is a little cheaper, but a Wake from another process
// would never find the sleeper. A shared futex on private memory (an ordinary
// Go variable) still works within one process, which is how the in-process
// tests use it.
//
// Alignment. The kernel requires the word to be 4-byte aligned (EINVAL
// otherwise; Wait and Wake return [ErrUnaligned] before asking it), and
// sync/atomic needs the same alignment. mmap returns page-aligned addresses,
// so a word at an offset that is a multiple of 4 in the region is aligned in
// every process that maps it; shmchan's layout puts each futex word at a
// fixed, aligned offset on its own cache line.
//
// Timeouts are relative durations measured on CLOCK_MONOTONIC: a negative
// timeout waits without limit, zero only checks the value (nil if it
// differs, [ErrTimeout] if it is equal), and an expired timeout is
// [ErrTimeout], which matches os.ErrDeadlineExceeded. Because Wait may
// return early without error, a caller with a deadline computes the time
// remaining before each call rather than passing the same timeout again.
//
// Blocking. A Wait occupies its OS thread for as long as it sleeps (the Go
// runtime hands the goroutine's processor to another thread meanwhile), and
// it cannot be cancelled from Go except by a Wake on its word or its
// timeout. Code that must honour a context cancellation wakes its own
// sleeper (for example with context.AfterFunc calling Wake after setting a
// flag the sleeper checks).
//
// # The asymmetric fence
//
// The lost wake-up problem is a store-buffer race. A publisher P makes a
// value available and then checks whether the other side sleeps; a sleeper S
// announces that it is going to sleep and then checks, one last time,
// whether something was published:
//
//	P1: store index = new         S1: store sleeping = 1
//	P2: load  sleeping            S2: Barrier()
//	    (wake S if it is 1)       S3: load  index
//	                                  (futex Wait if it is still old)
//
// The outcome to rule out is P2 reading 0 (P does not wake) while S3 reads the
// old index (S goes to sleep): nobody would ever wake S. Without fences,
// each side's load can be satisfied before its own store becomes visible to
// the other CPU, which allows exactly that outcome (x86-64 and arm64 both
// reorder a store with a later load).
//
// [Barrier] issues membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED). The kernel
// executes a full memory barrier in the caller before and after the call,
// and, between the two, makes every running thread of every process that
// registered with [RegisterBarrier] execute a full memory barrier (by
// interrupting it); a thread that is not running has passed through a
// context switch, which is a full barrier too. So P's thread has a barrier
// point B somewhere in its execution such that S1 is visible to every CPU
// before B, and everything P did before B is visible to S once Barrier
// returns. Either B comes before P2 in P's program order, in which case P2
// runs after B and reads sleeping == 1, so P wakes S; or B comes after P2,
// hence after P1, in which case P1 was visible before Barrier returned and
// S3 reads the new index, so S does not sleep. Either way the wake-up is not
// lost, and P needed no fence of its own: the cost of the fence moved to
// the sleeper, which is about to make a system call anyway. A Wake that
// arrives between S3 and the kernel's sleep is harmless: the futex value
// check (S waits with val = old on a word that P has changed) returns at
// once.
//
// The argument needs three things. First, P's process is registered while
// it relies on it: a process that did not register receives no barrier. The
// decision is local to the publisher: it may drop its fence only if its own
// RegisterBarrier returned true, and otherwise it uses a fenced store, which
// is correct with or without the sleeper's Barrier. Second, S calls Barrier
// between its store and its load, always, since it cannot know which kind
// of publisher it faces; a sleeper that cannot (registration failed in its
// process) must not sleep without a bound while fence-free publishers may
// exist. Third, P1 must stay before P2 in the instructions P executes (the
// compiler must not swap them) and must be a release store, so that the
// message P wrote before the index is visible no later than the index: the
// barrier repairs only the CPU's reordering of a store with a later load.
//
// What that means in Go. Go offers two kinds of stores: sync/atomic, which
// is sequentially consistent, and plain stores, which the Go memory model
// calls a data race when another goroutine reads concurrently. If P uses
// sync/atomic for both P1 and P2 (and S for S1 and S3), the forbidden
// outcome is already impossible without any Barrier: on amd64 an atomic
// store is an XCHG, a full fence; on arm64 it is STLR, and a later LDAR is
// ordered after it. The asymmetric fence pays off only for a publisher that
// wants to avoid the sequentially consistent store, which in practice means
// amd64, where XCHG costs tens of cycles and a plain MOV store already has
// release semantics: there a MOV for P1 (best written as a tiny assembly
// function, which no compiler can move or split) followed by an atomic load
// for P2 is exactly the pattern this package's Barrier makes safe. (A plain
// Go store works with the gc compiler, which keeps plain memory operations
// in program order around sync/atomic operations, but the Go memory model
// does not promise that, and the race detector reports the plain store if
// the peer is a goroutine of the same process.) On arm64 a plain store has no release
// semantics, so P1 must stay an atomic store there and Barrier buys
// nothing.
//
// [RegisterBarrier] is cheap to call repeatedly (it registers once per
// process) and reports whether membarrier's global expedited command is
// available; [Barrier] refuses to run before a successful registration.
// Expect a Barrier to cost microseconds (it interrupts other CPUs), against
// a few nanoseconds for a fence: it belongs on the slow path only.
//
// # Checking a machine
//
// [Probe] runs each futex operation once on a word of a shared mapping, and
// [RegisterBarrier] reports whether membarrier works: a seccomp profile can
// forbid either. shmchan doctor uses them.
package futex
