package capture

import (
	"errors"
	"fmt"
)

// Errors of this package; match them with errors.Is.
var (
	// ErrNotRecording: the file does not start with the magic, or has a
	// version this package does not read.
	ErrNotRecording = errors.New("not a shmchan recording")
	// ErrDamaged: a checksum does not match, or a field is impossible.
	ErrDamaged = errors.New("recording damaged")
	// ErrTruncated: the file ends inside the header or a record, or before
	// the end record.
	ErrTruncated = errors.New("recording truncated")
)

// headerIndex is DamageError.Record for damage in the header.
const headerIndex = -1

// DamageError says where a file is bad: Record is the index of the record
// (0 is the first after the header; -1 the header itself), Offset the byte
// offset in the file where that record (or header) starts, and At the
// offset of the bad field or of the end of the file.
type DamageError struct {
	Record int64
	Offset int64
	At     int64
	Reason string
	Err    error // ErrDamaged, ErrTruncated or ErrNotRecording
}

func (e *DamageError) Error() string {
	where := fmt.Sprintf("record %d (starting at byte offset %d)", e.Record, e.Offset)
	if e.Record == headerIndex {
		where = "header"
	}
	return fmt.Sprintf("%v: %s: %s (at byte offset %d)", e.Err, where, e.Reason, e.At)
}

func (e *DamageError) Unwrap() error { return e.Err }
