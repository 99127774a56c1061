package ring

import "sync/atomic"

// TestHooks are points inside the wake protocol where a test can stop or
// kill its own process, to check that no other process depends on it
// finishing. They are for tests only: production code never sets them, and
// they are looked at only on the slow path of a wake-up (after a waker has
// found a sleeper), never on a busy channel's fast path.
type TestHooks struct {
	// WakeClaimed runs in a waker right after its CAS of a single
	// sleeper's futex word succeeded, before it makes the wake call.
	WakeClaimed func()
}

var testHooks atomic.Pointer[TestHooks]

// SetTestHooks installs h for every ring of the process (nil: none). For
// tests only.
func SetTestHooks(h *TestHooks) { testHooks.Store(h) }

func hookWakeClaimed() {
	if h := testHooks.Load(); h != nil && h.WakeClaimed != nil {
		h.WakeClaimed()
	}
}
