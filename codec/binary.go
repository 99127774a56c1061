package codec

import (
	"encoding"
	"fmt"
	"reflect"
)

// Binary returns the codec for a T whose pointer implements
// encoding.BinaryAppender and encoding.BinaryUnmarshaler (the type
// parameter P is inferred: codec.Binary[Order]()). For picks it
// automatically for such types unless T is pointer-free (then raw wins).
//
// Encode calls AppendBinary on a zero-length slice of the slot payload whose
// capacity is capped at the payload's length, so the appender writes straight
// into the slot and can never write past it; if the result outgrows the
// payload (the appender had to reallocate), Encode reports ErrTooLarge with
// the encoded size. An appender that returns some other buffer of a fitting
// size is copied in.
//
// Decode copies the payload into a private pooled buffer first (the payload
// is shared memory a peer may change while UnmarshalBinary reads it) and
// passes that buffer to UnmarshalBinary. As the encoding.BinaryUnmarshaler
// contract requires, UnmarshalBinary must copy whatever it keeps: the buffer
// is reused after it returns. An error or a panic from UnmarshalBinary is
// reported as ErrCorrupt. UnmarshalBinary sees hostile bytes: it must bound
// what it allocates by the length of its input. Decode does not reset *v
// first; UnmarshalBinary is expected to overwrite it.
func Binary[T any, P interface {
	*T
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}]() Codec[T] {
	return newBinary[T](reflect.TypeFor[T]())
}

type binaryCodec[T any] struct {
	t    reflect.Type
	fp   uint64
	name string
}

func newBinary[T any](t reflect.Type) *binaryCodec[T] {
	if !implementsBinary(t) {
		panic("codec: binary codec for " + t.String())
	}
	return &binaryCodec[T]{t: t, fp: encodedFingerprint("binary", t), name: t.String()}
}

func (c *binaryCodec[T]) Name() string        { return "binary" }
func (c *binaryCodec[T]) Fingerprint() uint64 { return c.fp }
func (c *binaryCodec[T]) TypeName() string    { return c.name }
func (c *binaryCodec[T]) FixedSize() int      { return 0 }

func (c *binaryCodec[T]) Encode(dst []byte, v *T) (int, error) {
	p := any(v).(binaryPair) // checked at construction
	b, err := p.AppendBinary(dst[:0:len(dst)])
	if err != nil {
		return 0, fmt.Errorf("codec binary: encoding %s: %w", c.t, err)
	}
	if len(b) > len(dst) {
		return 0, tooLarge("binary", c.t, len(b), len(dst))
	}
	if len(b) > 0 && &b[0] != &dst[0] {
		copy(dst, b)
	}
	return len(b), nil
}

func (c *binaryCodec[T]) Decode(src []byte, v *T) (err error) {
	defer recoverCorrupt(&err, "binary", c.t)
	buf := copyToScratch(src)
	defer releaseScratch(buf)
	p := any(v).(binaryPair)
	if err := p.UnmarshalBinary(*buf); err != nil {
		return corrupt("binary", c.t, err)
	}
	return nil
}
