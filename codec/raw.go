package codec

// This file holds every use of package unsafe in the codec package.

import (
	"fmt"
	"reflect"
	"unsafe"
)

// RawCodec copies a pointer-free T as its in-memory bytes: one copy into the
// slot on Encode, one copy out on Decode, no reflection and no allocation.
// Obtain one with Raw or For; the zero RawCodec is not usable.
//
// The bytes are T's native representation on this machine (endianness,
// sizes, alignment and padding), which is fine because both ends of a
// shmchan region run on the same machine; RawFingerprint guards against the
// two ends disagreeing on the layout.
//
// Padding bytes inside T are copied verbatim: whatever the sender's memory
// held there reaches the peer. Go never reads padding, so this only matters
// if T's bytes are compared or hashed as a whole.
//
// bool fields: a hostile peer can store any byte in a bool field, and a Go
// bool holding something other than 0 or 1 breaks the compiler's
// assumptions (b and !b can both be true, and a bool used as an index can
// skip its bounds check). Decode therefore normalises every bool byte of its
// private copy: non-zero reads as true (1). For types without bool fields
// this costs one empty loop. Floats need no such care: every bit pattern,
// NaNs included, is a valid float.
//
// A zero-size T (struct{}, [0]int) travels as one byte whose value is
// ignored, so that FixedSize is always positive and a slot is never empty.
//
// Call Encode and Decode on the *RawCodec[T] directly (AsRaw gives it to
// you) in hot loops: through the Codec interface the compiler must assume
// the *T argument escapes, which costs the caller a heap allocation per value
// unless it already lives on the heap.
type RawCodec[T any] struct {
	size  int // unsafe.Sizeof(T)
	wire  int // bytes on the wire: size, or 1 for a zero-size T
	align int
	bools []span // bool bytes to normalise on Decode; nil if none
	fp    uint64
	name  string
}

// Raw returns the raw codec for T, or an error wrapping ErrNoCodec if T
// contains a pointer-like part at any depth (string, slice, map, interface,
// channel, func, pointer or unsafe.Pointer; uintptr is fine). The dynamic
// type of the result is *RawCodec[T].
func Raw[T any]() (Codec[T], error) {
	t := reflect.TypeFor[T]()
	l, err := analyzeRaw(t)
	if err != nil {
		return nil, noCodecError(t, err)
	}
	return newRaw[T](t, l), nil
}

func newRaw[T any](t reflect.Type, l rawLayout) *RawCodec[T] {
	if uintptr(l.size) != unsafe.Sizeof(*new(T)) {
		panic("codec: layout of " + t.String() + " does not match its size")
	}
	wire := l.size
	if wire == 0 {
		wire = 1
	}
	return &RawCodec[T]{
		size:  l.size,
		wire:  wire,
		align: l.align,
		bools: l.bools,
		fp:    rawFingerprint(t),
		name:  t.String(),
	}
}

// AsRaw returns c as a *RawCodec[T] if it is one. Only codecs built by this
// package can be raw, so a true result is a promise the caller may rely on
// for in-place access (see View).
func AsRaw[T any](c Codec[T]) (*RawCodec[T], bool) {
	rc, ok := c.(*RawCodec[T])
	return rc, ok && rc != nil
}

// IsRaw reports whether c is a raw codec: T is pointer-free and travels as
// its bytes, so the caller may read and write values in place in a slot.
func IsRaw[T any](c Codec[T]) bool {
	_, ok := AsRaw(c)
	return ok
}

// Name returns "raw".
func (c *RawCodec[T]) Name() string { return "raw" }

// Fingerprint returns RawFingerprint(T).
func (c *RawCodec[T]) Fingerprint() uint64 { return c.fp }

// TypeName returns T's reflect.Type.String().
func (c *RawCodec[T]) TypeName() string { return c.name }

// FixedSize returns the number of bytes every value takes in a slot:
// unsafe.Sizeof(T), or 1 for a zero-size T.
func (c *RawCodec[T]) FixedSize() int { return c.wire }

// Size returns unsafe.Sizeof(T) (0 for a zero-size T, unlike FixedSize).
func (c *RawCodec[T]) Size() int { return c.size }

// Align returns unsafe.Alignof(T): a slot payload must start at a multiple
// of it for View to hand out a *T.
func (c *RawCodec[T]) Align() int { return c.align }

// HasBool reports whether T contains bool fields, whose bytes Decode
// normalises. A *T obtained from View on a slot a peer wrote is only safe to
// read when HasBool is false; otherwise Decode into a private T.
func (c *RawCodec[T]) HasBool() bool { return c.bools != nil }

// Encode copies *v into dst and returns FixedSize(). It fails with
// ErrTooLarge only when len(dst) < FixedSize().
func (c *RawCodec[T]) Encode(dst []byte, v *T) (int, error) {
	if len(dst) < c.wire {
		return 0, &rawSizeError{name: c.name, got: len(dst), want: c.wire}
	}
	src := unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size)
	if c.size < chunkedMin {
		copy(dst, src)
	} else {
		copyChunked(dst, src)
	}
	return c.wire, nil
}

// chunkedMin is the size from which values are copied in chunkSize pieces.
// On the machines we measured, the runtime's memmove switches to
// non-temporal stores for copies of about 1 MiB and more, which bypass the
// cache and ran at half the speed of the same bytes copied in 256 KiB
// pieces (16 vs 31 GB/s); a value read right after it is written wants it
// in the cache anyway.
const (
	chunkedMin = 512 << 10
	chunkSize  = 256 << 10
)

// copyChunked is copy(dst, src) in chunkSize pieces (see chunkedMin).
//
//go:noinline
func copyChunked(dst, src []byte) {
	n := min(len(dst), len(src))
	for off := 0; off < n; off += chunkSize {
		end := min(off+chunkSize, n)
		copy(dst[off:end], src[off:end])
	}
}

// Decode copies src into *v. src must be exactly FixedSize() bytes long,
// else the error wraps ErrCorrupt. bool fields are normalised (see
// RawCodec).
func (c *RawCodec[T]) Decode(src []byte, v *T) error {
	if len(src) != c.wire {
		return &rawSizeError{name: c.name, decode: true, got: len(src), want: c.wire}
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size)
	if c.size < chunkedMin {
		copy(b, src)
	} else {
		copyChunked(b, src)
	}
	for _, s := range c.bools {
		for i := s.lo; i < s.hi; i++ {
			b[i] = min(b[i], 1)
		}
	}
	return nil
}

// rawSizeError is the error of a raw Encode or Decode given the wrong size.
// Its message is only formatted when asked for, which keeps Encode and
// Decode small enough to inline.
type rawSizeError struct {
	name      string
	decode    bool
	got, want int
}

func (e *rawSizeError) Error() string {
	if e.decode {
		return fmt.Sprintf("codec raw: decoding %s: payload is %d bytes, want exactly %d: %v",
			e.name, e.got, e.want, ErrCorrupt)
	}
	return fmt.Sprintf("codec raw: %s is %d bytes, the slot payload holds %d: %v",
		e.name, e.want, e.got, ErrTooLarge)
}

// Unwrap returns ErrCorrupt or ErrTooLarge.
func (e *rawSizeError) Unwrap() error {
	if e.decode {
		return ErrCorrupt
	}
	return ErrTooLarge
}

// View returns b's first FixedSize() bytes as a *T, for in-place access to a
// slot. It reports false if b is too short or not aligned for T.
//
// The pointer aliases b: it is valid only while the caller owns the slot,
// and the GC does not keep b alive through it if b is Go memory (T has no
// pointers, so the GC ignores it). For memory a peer wrote, reading through
// it is only sound if HasBool is false, and even then the peer may change the
// bytes while you read (the ring's ownership rules are what prevent that).
// Writing through it is always sound.
func (c *RawCodec[T]) View(b []byte) (*T, bool) {
	if len(b) < c.wire {
		return nil, false
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%uintptr(c.align) != 0 {
		return nil, false
	}
	return (*T)(p), true
}

// asBytes views a T whose underlying type is a byte slice as a *[]byte.
// The caller has checked the kind (isByteSlice): []E with E of kind uint8
// has the same layout as []byte.
func asBytes[T any](v *T) *[]byte { return (*[]byte)(unsafe.Pointer(v)) }

// asString views a T whose underlying type is string as a *string.
func asString[T any](v *T) *string { return (*string)(unsafe.Pointer(v)) }
