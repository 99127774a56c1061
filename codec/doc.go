// Package codec turns a value of type T into the bytes of a shmchan slot
// payload and back, and computes the fingerprint of T that a region's header
// records.
//
// # Codecs
//
// A Codec[T] has a stable Name, a Fingerprint, a human-readable TypeName, a
// FixedSize (non-zero only for raw codecs) and Encode/Decode methods that work
// on a slot payload. The codecs in this package:
//
//   - raw ("raw", Raw[T]): T is pointer-free and travels as its in-memory
//     bytes: one copy into the slot, one copy out, no reflection and no
//     allocation per message. This is the hot path.
//   - bytes ("bytes", Bytes()): []byte, and any type whose underlying type is
//     a byte slice. The payload is the bytes.
//   - string ("string", String()): string and types based on it.
//   - binary ("binary", Binary[T]()): T whose pointer implements
//     encoding.BinaryAppender and encoding.BinaryUnmarshaler. The appender
//     writes straight into the slot.
//   - json ("json", JSON[T]()) and gob ("gob", Gob[T]()): anything else, at
//     the cost of an allocation-heavy encoding. Never chosen silently: pass
//     them with shmchan.WithCodec.
//
// For[T] picks the default: raw if T is pointer-free, else binary if *T has
// the two methods, else bytes or string by T's kind, else an error wrapping
// ErrNoCodec that names T, the field that stopped it from being raw, and the
// two codecs that would work (codec.JSON[T]() and codec.Gob[T]()).
//
// # What "raw" means
//
// A type is raw when it contains no pointers at any depth: no string, slice,
// map, interface, channel, func, pointer or unsafe.Pointer, only booleans,
// numbers (uintptr included), and arrays and structs of them. Such a value is
// meaningful as plain bytes to another process, and is copied as exactly
// unsafe.Sizeof(T) bytes in the machine's native representation. Both ends of
// a region run on the same machine, so endianness, sizes and alignment agree;
// the fingerprint checks that both sides have the same layout anyway.
//
// Raw values carry their padding bytes (whatever the sender's memory held)
// and, read from a peer, may carry any byte in a bool field: Decode
// normalises those to true. A zero-size T takes one byte per message. See
// RawCodec for in-place access to slots (View) and its rules.
//
// # The fingerprint
//
// A region records the fingerprint of the T it was created for, and Open with
// a different T fails with ErrTypeMismatch. For raw codecs the fingerprint is
// RawFingerprint: a hash of T's structure (kinds, sizes, alignments, field
// names and offsets, array lengths, recursively) that ignores T's name and
// package, so a producer and a consumer may each declare their own copy of
// the struct, but any change in layout or field names is caught. For the
// other codecs it is a hash of the codec's name and T's package-qualified type
// string (for example "github.com/acme/orders.Order"): the same named type
// through the same codec. []byte, string, and a raw [N]byte all have
// different fingerprints.
//
// # Untrusted input
//
// Decode reads payloads from shared memory that another process writes, and
// that process may be buggy or hostile, and may even change the bytes while
// Decode runs. Every Decode in this package reports bad input as an error
// wrapping ErrCorrupt and never panics, bounds every allocation by the
// payload's length, and, for decoders that read their input more than once,
// decodes from a private copy. Gob payloads are validated against gob's wire
// format before encoding/gob sees them (see Gob).
//
// # Choosing
//
// Prefer raw: a fixed-size struct of numbers, booleans and fixed-size arrays
// (a [64]byte name instead of a string) is the fastest thing shmchan can
// send, tens of millions of messages per second. For byte strings use
// []byte or string directly. For structured variable-size data, implement
// encoding.BinaryAppender and encoding.BinaryUnmarshaler for speed, or use
// JSON for convenience; Gob is there for types that already speak gob.
package codec
