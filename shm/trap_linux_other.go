//go:build linux && !amd64

package shm

// Only amd64 has the trap's handler; elsewhere Object.Hit is nil and
// callers keep the SetPanicOnFault guard.
const trapArch = false

func trapHandlerPC() uintptr { return 0 }
