package layout

import "errors"

var (
	// ErrCorrupt reports a region whose bytes cannot be a valid shmchan
	// region: bad magic, bad checksum, an impossible field, or a file
	// shorter than its header claims.
	ErrCorrupt = errors.New("shmchan: corrupt region")

	// ErrIncompatible reports a well-formed region this code cannot or must
	// not use: another layout version, or parameters that disagree with what
	// the caller asked for.
	ErrIncompatible = errors.New("shmchan: incompatible region")
)
