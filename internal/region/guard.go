package region

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/ring"
)

// Shared memory can vanish under a mapping: a peer that ftruncates the
// region makes the kernel deliver SIGBUS on the next access past the new
// end, which would kill the process. Two mechanisms turn that into
// ErrCorrupt:
//
//   - The trap (shm/trap_linux.go, amd64): a fault inside a mapping made
//     by shm.Object.Map is answered with zero pages and sets the mapping's
//     hit word (Region.Hit). Nothing panics; the call that touched the
//     mapping checks the word afterwards and reports ErrCorrupt
//     (ring.ErrTrapped). The hot paths rely on this alone.
//   - The guard, for mappings without a hit word (other architectures, or
//     the trap not installable): every call that touches the mapping runs
//     between Protect and Recover (or Arm and Disarm); the runtime turns
//     the fault into a panic in the faulting goroutine, and Recover turns
//     that panic into ErrCorrupt. Any other panic (a user callback's, say)
//     goes on unchanged.
//
// Recover and Disarm also check the hit word they are given, so a call
// under the guard reports a trapped fault the same way.

// Saved is the goroutine's panic-on-fault setting as Protect or Guard
// found it, for Recover and Restore: SavedOff, SavedOn, or Untouched when
// Guard left it alone.
type Saved int8

const (
	SavedOff  Saved = 0
	SavedOn   Saved = 1
	Untouched Saved = -1
)

// Protect makes memory faults in this goroutine panic instead of crashing
// the process. It returns the previous setting, for Recover.
func Protect() Saved {
	if debug.SetPanicOnFault(true) {
		return SavedOn
	}
	return SavedOff
}

// Guard is Protect for a call on the mapping whose hit word is hit: a
// trapped mapping (hit not nil) cannot fault, so the setting is left alone
// (Untouched) and Recover only reads the word. Two runtime calls fewer.
func Guard(hit *uint32) Saved {
	if hit != nil {
		return Untouched
	}
	return Protect()
}

// Recover restores the setting Protect returned and, if the goroutine is
// panicking because of a memory fault, stops the panic and stores an error
// wrapping ErrCorrupt in *err; then it checks the hit word. After Guard's
// Untouched it only checks the word (any panic goes on as it is). It must
// be called directly by a deferred function (or be one).
func Recover(hit *uint32, err *error, old Saved) {
	if old != Untouched {
		debug.SetPanicOnFault(old == SavedOn)
		if r := recover(); r != nil {
			*err = fault(r)
		}
	}
	trapped(hit, err)
}

// The exclusive endpoints' hot paths pay for less: Arm turns the setting
// on and leaves it on (no restore per call; the endpoint's Release puts back
// what Protect returned when it was made), and Disarm, deferred, looks for
// a fault only when the call did not get to its end (*done false). That is
// two runtime calls per value fewer than Protect and Recover.
//
//	region.Arm()
//	done := false
//	defer region.Disarm(hit, &err, &done)
//	err = ... // touches the mapping
//	done = true
//	return err

// Arm makes memory faults in this goroutine panic, and leaves it so.
func Arm() { debug.SetPanicOnFault(true) }

// Disarm is Arm's deferred half: unless *done, it stops a memory-fault
// panic and stores an error wrapping ErrCorrupt in *err; any other panic
// goes on. It must be called directly by a deferred function (or be one).
func Disarm(hit *uint32, err *error, done *bool) {
	if !*done {
		if r := recover(); r != nil {
			*err = fault(r)
		}
	}
	trapped(hit, err)
}

// Hit reports whether the trap has answered a fault in the mapping whose
// hit word this is (nil: not trapped, false).
func Hit(hit *uint32) bool { return hit != nil && atomic.LoadUint32(hit) != 0 }

// trapped replaces *err with ring.ErrTrapped when the mapping's hit word is set:
// whatever the call read since came from zero pages, not from a peer. The
// trap is for good: every later call on the mapping fails the same way,
// since the pages past the cut now hold only what this process wrote. An
// ErrClosed stays (the handle was closed, or the closed bit was seen in a
// page that is still the file's).
func trapped(hit *uint32, err *error) {
	if Hit(hit) && !errors.Is(*err, ring.ErrClosed) {
		*err = ring.ErrTrapped
	}
}

// Restore sets this goroutine's panic-on-fault setting back to old (what
// Protect returned; nothing for Untouched).
func Restore(old Saved) {
	if old != Untouched {
		debug.SetPanicOnFault(old == SavedOn)
	}
}

// fault turns a recovered memory-fault panic into an error wrapping
// ErrCorrupt, and lets any other panic go on.
func fault(r any) error {
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		return fmt.Errorf("%w: memory fault at %#x: the region was truncated under its mapping", layout.ErrCorrupt, f.Addr())
	}
	panic(r)
}
