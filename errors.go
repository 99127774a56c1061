package shmchan

import (
	"errors"

	"github.com/shmchan/shmchan/codec"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/ring"
	"github.com/shmchan/shmchan/shm"
)

// The errors of the public contract. Match them with errors.Is: the errors
// returned are wrapped with context (the channel's name, the sizes, the
// field that was wrong).
var (
	// ErrFull: TrySend found no free slot.
	ErrFull = ring.ErrFull
	// ErrEmpty: TryRecv found no value.
	ErrEmpty = ring.ErrEmpty
	// ErrClosed: the channel was closed for sending (CloseSend), and for a
	// receiver it is also drained; or this handle was closed (Close). It
	// also matches os.ErrClosed.
	ErrClosed = ring.ErrClosed
	// ErrTooLarge: the encoded value is longer than the channel's maximum
	// message size.
	ErrTooLarge = codec.ErrTooLarge
	// ErrTypeMismatch: the region holds values of another type or codec.
	ErrTypeMismatch = errors.New("shmchan: type mismatch")
	// ErrIncompatible: another layout version, or an option that disagrees
	// with the region's parameters.
	ErrIncompatible = layout.ErrIncompatible
	// ErrCorrupt: bad magic, bad checksum, an impossible field, a file
	// shorter than its header claims, or a peer that wrote an impossible
	// index or length.
	ErrCorrupt = layout.ErrCorrupt
	// ErrBusy: the role (sender or receiver) is held by a live process (or
	// another handle in this one).
	ErrBusy = errors.New("shmchan: role held by a live process")
	// ErrInvalidName: the name is empty, ".", "..", has a NUL or a slash
	// other than one leading slash, or is longer than 255 bytes. It
	// matches fs.ErrInvalid too.
	ErrInvalidName = shm.ErrInvalidName
	// ErrNoCodec: T has no built-in encoding; pass WithCodec.
	ErrNoCodec = codec.ErrNoCodec
	// ErrNotRaw: in-place access (SendFunc, RecvFunc) needs a raw,
	// pointer-free T.
	ErrNotRaw = errors.New("shmchan: in-place access needs a pointer-free type")
	// ErrLagged: a broadcast receiver on a DropOldest channel fell more
	// than Cap() behind and values were overwritten before it read them.
	// The error is a *LagError, which says how many.
	ErrLagged = ring.ErrLagged
)

// LagError is what a lagging DropOldest receiver gets, once per gap:
// errors.Is(err, ErrLagged) holds and errors.As gives the count. The next
// receive goes on with the oldest value still intact.
type LagError = ring.LagError

// errHandleClosed marks ErrClosed returned because this handle was closed,
// as opposed to the channel being closed for sending.
var errHandleClosed = errors.New("handle closed")
