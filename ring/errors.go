package ring

import (
	"errors"
	"fmt"
	"os"

	"github.com/shmchan/shmchan/layout"
)

var (
	// ErrFull: no free slot now (TrySend-style calls).
	ErrFull = errors.New("shmchan: channel full")
	// ErrEmpty: no committed value now (TryRecv-style calls).
	ErrEmpty = errors.New("shmchan: channel empty")
	// ErrClosed: the channel was closed for sending (and, for a receiver,
	// it is drained). It matches os.ErrClosed too.
	ErrClosed = fmt.Errorf("shmchan: channel closed: %w", os.ErrClosed)
	// ErrCorrupt is layout.ErrCorrupt: a peer wrote an impossible value.
	ErrCorrupt = layout.ErrCorrupt
)

// ErrTrapped is the ErrCorrupt of a call on a mapping whose trap word is set
// (Config.Hit): a peer truncated the file, and the pages past the cut were
// answered with zero pages, which no peer sees.
var ErrTrapped = fmt.Errorf("%w: memory fault: the region was truncated under its mapping (answered with zero pages)", ErrCorrupt)

// ErrLagged: a broadcast receiver on a DropOldest channel fell more than a
// ring behind, and values were overwritten before it read them.
var ErrLagged = errors.New("shmchan: receiver lagged behind: values were overwritten before it read them")

// LagError is the error a DropOldest receiver gets once per gap: Missed
// values were overwritten before it read them. It matches ErrLagged.
type LagError struct{ Missed uint64 }

func (e *LagError) Error() string {
	return fmt.Sprintf("shmchan: receiver lagged behind: %d values were overwritten before it read them", e.Missed)
}

// Is makes errors.Is(err, ErrLagged) true.
func (e *LagError) Is(target error) bool { return target == ErrLagged }

// corruptf returns an ErrCorrupt with a message.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
