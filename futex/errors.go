package futex

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Errors of this package; match them with errors.Is.
var (
	// ErrTimeout reports that Wait's timeout expired while the word still
	// held the expected value. It matches os.ErrDeadlineExceeded.
	ErrTimeout = fmt.Errorf("futex wait timed out: %w", os.ErrDeadlineExceeded)

	// ErrUnaligned reports a futex word whose address is nil or not a
	// multiple of 4. It matches fs.ErrInvalid.
	ErrUnaligned = fmt.Errorf("futex word not 4-byte aligned: %w", fs.ErrInvalid)

	// ErrNoBarrier reports a Barrier call in a process where
	// RegisterBarrier has not succeeded.
	ErrNoBarrier = errors.New("membarrier global expedited not registered")
)
