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
		if f, ok := r.(interface{ Addr() uintptr }); ok {
			*err = fmt.Errorf("%w: memory fault at %#x: the region was truncated under its mapping", layout.ErrCorrupt, f.Addr())
			return
		}
		panic(r)
	}
}
