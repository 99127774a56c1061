package codec

import "reflect"

// Bytes returns the codec for []byte. The payload is the bytes themselves:
// the "length prefix" DESIGN.md speaks of is the slot's committed-length
// field, which the ring stores outside the payload, so a value of length n
// needs exactly n payload bytes (WithMaxMessageSize(n) fits it).
//
// nil and empty slices both encode to zero bytes, so the distinction does
// not travel. Decode of a zero-length payload sets *v to (*v)[:0]: empty and
// non-nil if *v had a backing array, nil if *v was nil (as it is when
// receiving into a fresh zero value).
//
// Decode reuses *v's backing array when it is large enough
// (append((*v)[:0], src...)), so a receiver that decodes into the same slice
// over and over stops allocating once the slice has grown to the largest
// message. The result never aliases src.
//
// For uses the same codec for any T whose underlying type is a byte slice
// (type Blob []byte); the fingerprint then names that type.
func Bytes() Codec[[]byte] {
	return newBytes[[]byte](reflect.TypeFor[[]byte]())
}

// String returns the codec for string. Like Bytes, the payload is the bytes
// of the string and its length is the slot's committed length. Decode
// allocates the new string (unavoidable, strings are immutable), except for
// the empty string.
func String() Codec[string] {
	return newString[string](reflect.TypeFor[string]())
}

type bytesCodec[T any] struct {
	t    reflect.Type
	fp   uint64
	name string
}

func newBytes[T any](t reflect.Type) *bytesCodec[T] {
	if !isByteSlice(t) {
		panic("codec: bytes codec for " + t.String())
	}
	return &bytesCodec[T]{t: t, fp: encodedFingerprint("bytes", t), name: t.String()}
}

func (c *bytesCodec[T]) Name() string        { return "bytes" }
func (c *bytesCodec[T]) Fingerprint() uint64 { return c.fp }
func (c *bytesCodec[T]) TypeName() string    { return c.name }
func (c *bytesCodec[T]) FixedSize() int      { return 0 }

func (c *bytesCodec[T]) Encode(dst []byte, v *T) (int, error) {
	b := *asBytes(v)
	if len(b) > len(dst) {
		return 0, tooLarge("bytes", c.t, len(b), len(dst))
	}
	return copy(dst, b), nil
}

func (c *bytesCodec[T]) Decode(src []byte, v *T) error {
	b := asBytes(v)
	*b = append((*b)[:0], src...)
	return nil
}

type stringCodec[T any] struct {
	t    reflect.Type
	fp   uint64
	name string
}

func newString[T any](t reflect.Type) *stringCodec[T] {
	if t.Kind() != reflect.String {
		panic("codec: string codec for " + t.String())
	}
	return &stringCodec[T]{t: t, fp: encodedFingerprint("string", t), name: t.String()}
}

func (c *stringCodec[T]) Name() string        { return "string" }
func (c *stringCodec[T]) Fingerprint() uint64 { return c.fp }
func (c *stringCodec[T]) TypeName() string    { return c.name }
func (c *stringCodec[T]) FixedSize() int      { return 0 }

func (c *stringCodec[T]) Encode(dst []byte, v *T) (int, error) {
	s := *asString(v)
	if len(s) > len(dst) {
		return 0, tooLarge("string", c.t, len(s), len(dst))
	}
	return copy(dst, s), nil
}

func (c *stringCodec[T]) Decode(src []byte, v *T) error {
	*asString(v) = string(src)
	return nil
}
