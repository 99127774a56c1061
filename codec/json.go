package codec

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// JSON returns a codec that encodes T with encoding/json. It works for any
// type encoding/json handles; it allocates on every Encode and Decode and is
// one to two orders of magnitude slower than raw, so use it for convenience,
// not for throughput.
//
// Encode marshals into a new buffer and copies it into the slot, reporting
// ErrTooLarge (with the encoded size) if it does not fit. Decode zeroes *v,
// then unmarshals from a private copy of the payload (encoding/json reads
// its input twice, and the payload is shared memory a peer may change in
// between); any error, including a type mismatch, is reported as
// ErrCorrupt. The fingerprint covers the codec name and T's
// package-qualified type name, not T's fields: a sender and receiver built
// from different versions of T still match and JSON's own rules decide.
func JSON[T any]() Codec[T] {
	t := reflect.TypeFor[T]()
	return &jsonCodec[T]{t: t, fp: encodedFingerprint("json", t), name: t.String()}
}

type jsonCodec[T any] struct {
	t    reflect.Type
	fp   uint64
	name string
}

func (c *jsonCodec[T]) Name() string        { return "json" }
func (c *jsonCodec[T]) Fingerprint() uint64 { return c.fp }
func (c *jsonCodec[T]) TypeName() string    { return c.name }
func (c *jsonCodec[T]) FixedSize() int      { return 0 }

func (c *jsonCodec[T]) Encode(dst []byte, v *T) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("codec json: encoding %s: %w", c.t, err)
	}
	if len(b) > len(dst) {
		return 0, tooLarge("json", c.t, len(b), len(dst))
	}
	return copy(dst, b), nil
}

func (c *jsonCodec[T]) Decode(src []byte, v *T) (err error) {
	defer recoverCorrupt(&err, "json", c.t)
	buf := copyToScratch(src)
	defer releaseScratch(buf)
	var zero T
	*v = zero
	if err := json.Unmarshal(*buf, v); err != nil {
		return corrupt("json", c.t, err)
	}
	return nil
}
