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
