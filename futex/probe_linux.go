package futex

import (
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"
	"unsafe"
)

// Probe checks that futex(2) works on the 32-bit word at the start of mem,
// normally the first bytes of a MAP_SHARED mapping of a shared-memory
// object, as a region's futex words are: it runs each operation the
// library uses once, a wait on a value the word does not hold (returns at
// once), a wait that times out after a millisecond, and a wake. It
// overwrites those four bytes. mem must hold at least 4 bytes (fs.ErrInvalid
// otherwise) and start 4-byte aligned (ErrUnaligned). The error says which
// operation failed, wrapping the errno: a seccomp profile that forbids
// futex gives EPERM or ENOSYS.
func Probe(mem []byte) error {
	if len(mem) < 4 {
		return fmt.Errorf("futex: probe on %d bytes: %w", len(mem), fs.ErrInvalid)
	}
	word := (*uint32)(unsafe.Pointer(&mem[0]))
	if err := check("probe", word); err != nil {
		return err
	}
	atomic.StoreUint32(word, 7)
	if err := Wait(word, 8, time.Millisecond); err != nil {
		return fmt.Errorf("wait on a changed value: %w", err)
	}
	if err := Wait(word, 7, time.Millisecond); !errors.Is(err, ErrTimeout) {
		return fmt.Errorf("wait with a timeout: got %v, want a timeout", err)
	}
	if _, err := Wake(word, 1); err != nil {
		return fmt.Errorf("wake: %w", err)
	}
	return nil
}
