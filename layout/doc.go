// Package layout is the byte map of a shmchan region: where every header
// field, index, counter, role entry and slot lives, how the immutable header
// is checksummed, and how a region image is validated before anything else
// trusts it.
//
// The package is pure: it works on a []byte and performs no system calls.
// The exact format, precise enough to read a region from C, is written down
// in FORMAT.md beside this file; the offsets below and the tests in
// layout_test.go keep the two in step.
//
// A region is
//
//	[0, 256)            immutable header, xxhash64 checksum in its last 8 bytes
//	[256, 576)          five 64-byte lines of mutable words (ready, tail, head,
//	                    receiver wait, sender wait)
//	[576, DataOffset)   role entries, one 64-byte line each: entry 0 is the
//	                    receiver, entries 1..Producers the senders
//	[DataOffset, Size)  Capacity slots of SlotSize bytes each
//
// Validate checks, in this order and each with its own error: the magic
// (ErrCorrupt), the layout version (ErrIncompatible), the checksum
// (ErrCorrupt), the parameters (ErrCorrupt: an impossible field), and the
// size of the file against the size the header claims (ErrCorrupt).
// Callers copy the header out of shared memory once (Validate does) and use
// the returned Header from then on, so a peer that rewrites the header after
// validation cannot change what this process believes.
package layout
