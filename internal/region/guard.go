package region

import (
	"fmt"
	"runtime/debug"

	"github.com/shmchan/shmchan/layout"
)

// Shared memory can vanish under a mapping: a peer that ftruncates the
// region makes the kernel deliver SIGBUS on the next access past the new
// end, which would kill the process. Every call that touches the mapping
// runs between Protect and Recover: the runtime turns such a fault into a
// panic in the faulting goroutine, and Recover turns that panic into
// ErrCorrupt. Any other panic (a user callback's, say) goes on unchanged.

// Protect makes memory faults in this goroutine panic instead of crashing
// the process. It returns the previous setting, for Recover.
func Protect() bool { return debug.SetPanicOnFault(true) }

// Recover restores the setting Protect returned and, if the goroutine is
// panicking because of a memory fault, stops the panic and stores an error
// wrapping ErrCorrupt in *err. It must be called directly by a deferred
// function (or be one).
func Recover(err *error, old bool) {
	debug.SetPanicOnFault(old)
	if r := recover(); r != nil {
		*err = fault(r)
	}
}

// The exclusive endpoints' hot paths pay for less: Arm turns the setting
// on and leaves it on (no restore per call; the endpoint's Release puts back
// what Protect returned when it was made), and Disarm, deferred, looks for
// a fault only when the call did not get to its end (*done false). That is
// two runtime calls per value fewer than Protect and Recover.
//
//	region.Arm()
//	done := false
//	defer region.Disarm(&err, &done)
//	err = ... // touches the mapping
//	done = true
//	return err

// Arm makes memory faults in this goroutine panic, and leaves it so.
func Arm() { debug.SetPanicOnFault(true) }

// Disarm is Arm's deferred half: unless *done, it stops a memory-fault
// panic and stores an error wrapping ErrCorrupt in *err; any other panic
// goes on. It must be called directly by a deferred function (or be one).
func Disarm(err *error, done *bool) {
	if *done {
		return
	}
	if r := recover(); r != nil {
		*err = fault(r)
	}
}

// Restore sets this goroutine's panic-on-fault setting to old (what
// Protect returned).
func Restore(old bool) { debug.SetPanicOnFault(old) }

// fault turns a recovered memory-fault panic into an error wrapping
// ErrCorrupt, and lets any other panic go on.
func fault(r any) error {
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		return fmt.Errorf("%w: memory fault at %#x: the region was truncated under its mapping", layout.ErrCorrupt, f.Addr())
	}
	panic(r)
}
