// Package capture reads and writes recordings of a channel: the file that
// 'shmchan record' writes and 'shmchan replay' reads. A recording holds the
// slot bytes of every value taken from a channel, each with the time it was
// taken, and enough of the channel's identity (codec, type, fingerprint,
// value size) to refuse replaying it into a channel of another type.
//
// # File format, version 1
//
// All integers are little-endian. A file is a header, then any number of
// value records, then one end record, then nothing.
//
// Header (64 bytes, then three names, then a checksum):
//
//	off  size  field
//	0    8     magic "SHMCREC\x00"
//	8    4     version, 1
//	12   4     header length H in bytes, the whole header (72 + the names)
//	16   4     flags: bit 0 raw (values are the bytes of a pointer-free Go
//	           type, all exactly value size long); other bits 0
//	20   4     value size: the length of every value of a raw channel, else 0
//	24   4     max message: no value is longer (1 to 1<<30)
//	28   4     reserved, 0
//	32   8     type fingerprint of the channel (codec and type)
//	40   8     capacity of the channel recorded (for information)
//	48   8     start of the recording, Unix nanoseconds
//	56   2     codec name length C (1 to 16)
//	58   2     type name length T (0 to 128)
//	60   2     channel name length N (0 to 255)
//	62   2     reserved, 0
//	64   C     codec name, then T bytes of type name, then N bytes of the
//	           channel's name (UTF-8, no NUL)
//	H-8  8     xxhash64 of bytes [0, H-8) of the header
//
// Record (24 bytes, then the data):
//
//	off  size  field
//	0    4     data length L
//	4    4     kind: 1 a value, 2 the end record
//	8    8     time: Unix nanoseconds (a value: when the recorder took it
//	           from the channel; the end record: when the recording ended)
//	16   8     checksum: xxhash64 over the record's index (8 bytes; the
//	           first record after the header is index 0, the end record's
//	           index is the number of value records), then bytes [0, 16) of
//	           the record, then the L data bytes
//	24   L     data: a value's slot bytes; for the end record, 8 bytes
//	           holding the number of value records
//
// The index inside each checksum catches records that were lost, doubled
// or moved, not only changed bytes. A file without its end record was cut
// short (or its recorder was killed before it could finish): Reader reports
// that as ErrTruncated, naming the last whole record, and a caller that
// wants what is there can take the values read until then.
//
// A reader trusts nothing in the file: every length is checked against the
// header's limits before anything is allocated, data is read in bounded
// pieces, and each problem is a *DamageError that says which record (or
// the header) is bad and at which byte offset, wrapping ErrDamaged,
// ErrTruncated or ErrNotRecording.
package capture
