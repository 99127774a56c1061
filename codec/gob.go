package codec

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
)

// Gob returns a codec that encodes T with encoding/gob.
//
// Every message is self-contained: Encode uses a fresh gob.Encoder, so each
// payload carries gob's description of T's types before the value (tens to
// hundreds of bytes per message, and a fresh gob.Decoder compiling them on
// every Decode). Gob is therefore slower than JSON for small values; it is
// here for types that already speak gob (GobEncoder, time.Time, big.Int, ...).
//
// encoding/gob is not hardened against hostile input (its documentation
// says so; for instance, a map length in the input is used as an allocation
// hint without checking it against the input size). Decode therefore first
// walks the payload with a validator of its own that follows gob's wire
// format exactly as encoding/gob will read it and rejects, as ErrCorrupt, any
// length or count larger than the bytes that remain, any undefined or
// ambiguous type, and nesting deeper than 10000 levels. Only then is the
// payload (a private copy of it, so the peer cannot change it after the
// check) handed to encoding/gob, and a panic in there is reported as
// ErrCorrupt too. Decode zeroes *v first, because gob leaves fields that are
// zero in the message untouched.
//
// To keep that validation exact, T must not contain interface values that
// gob would decode (exported fields of interface type, at any depth;
// interface values inside a type that implements GobDecoder,
// BinaryUnmarshaler or TextUnmarshaler are opaque to gob and fine). For such
// a T, Encode and Decode return an error wrapping ErrNoCodec (and so does
// Check, which shmchan calls when a channel is set up); use JSON or a Binary
// codec instead.
//
// The fingerprint covers the codec name and T's package-qualified type
// name, not T's fields: gob's own compatibility rules apply between versions.
func Gob[T any]() Codec[T] {
	t := reflect.TypeFor[T]()
	c := &gobCodec[T]{t: t, fp: encodedFingerprint("gob", t), name: t.String()}
	if path, it := findGobInterface(t, "", map[reflect.Type]bool{}); it != nil {
		where := "it is"
		if path != "" {
			where = "field " + path + " is"
		}
		c.unsupported = fmt.Errorf("%w %s with the gob codec: %s an interface (%s), "+
			"which codec.Gob cannot validate against a hostile peer; use codec.JSON[%s]() "+
			"or implement encoding.BinaryAppender and encoding.BinaryUnmarshaler on *%s",
			ErrNoCodec, t, where, it, t, t)
	}
	return c
}

type gobCodec[T any] struct {
	t           reflect.Type
	fp          uint64
	name        string
	unsupported error
}

func (c *gobCodec[T]) Name() string        { return "gob" }
func (c *gobCodec[T]) Fingerprint() uint64 { return c.fp }
func (c *gobCodec[T]) TypeName() string    { return c.name }
func (c *gobCodec[T]) FixedSize() int      { return 0 }

var gobBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (c *gobCodec[T]) check() error { return c.unsupported }

func (c *gobCodec[T]) Encode(dst []byte, v *T) (n int, err error) {
	if c.unsupported != nil {
		return 0, c.unsupported
	}
	defer func() {
		// gob panics on some values it cannot encode (nil pointers).
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("codec gob: encoding %s: %v", c.t, r)
		}
	}()
	buf := gobBufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledScratch {
			buf.Reset()
			gobBufPool.Put(buf)
		}
	}()
	buf.Reset()
	if err := gob.NewEncoder(buf).Encode(v); err != nil {
		return 0, fmt.Errorf("codec gob: encoding %s: %w", c.t, err)
	}
	if buf.Len() > len(dst) {
		return 0, tooLarge("gob", c.t, buf.Len(), len(dst))
	}
	return copy(dst, buf.Bytes()), nil
}

func (c *gobCodec[T]) Decode(src []byte, v *T) (err error) {
	if c.unsupported != nil {
		return c.unsupported
	}
	defer recoverCorrupt(&err, "gob", c.t)
	buf := copyToScratch(src)
	defer releaseScratch(buf)
	if err := checkGob(*buf); err != nil {
		return corrupt("gob", c.t, err)
	}
	var zero T
	*v = zero
	r := bytes.NewReader(*buf)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return corrupt("gob", c.t, err)
	}
	if r.Len() != 0 {
		return corrupt("gob", c.t, fmt.Errorf("%d bytes after the value", r.Len()))
	}
	return nil
}

var (
	gobDecoderType        = reflect.TypeFor[gob.GobDecoder]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textUnmarshalerType   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// gobOpaque reports whether gob decodes t through GobDecode,
// UnmarshalBinary or UnmarshalText (as a length-prefixed byte string),
// following encoding/gob's rule: t, anything t points to, or *t implements
// one of them.
func gobOpaque(t reflect.Type) bool {
	for _, it := range []reflect.Type{gobDecoderType, binaryUnmarshalerType, textUnmarshalerType} {
		rt := t
		for range 100 {
			if rt.Implements(it) {
				return true
			}
			if rt.Kind() != reflect.Pointer {
				break
			}
			rt = rt.Elem()
		}
		if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(it) {
			return true
		}
	}
	return false
}

// findGobInterface looks for an interface type that encoding/gob would
// decode into when decoding a t: through pointers, arrays, slices, maps and
// the struct fields gob can see (exported ones, and the fields promoted from
// embedded structs), but not inside types gob treats as opaque. It
// over-approximates a little, which only makes Gob refuse a type it could
// have handled.
func findGobInterface(t reflect.Type, path string, seen map[reflect.Type]bool) (string, reflect.Type) {
	if seen[t] {
		return "", nil
	}
	seen[t] = true
	if gobOpaque(t) {
		return "", nil
	}
	switch t.Kind() {
	case reflect.Interface:
		return path, t
	case reflect.Pointer:
		return findGobInterface(t.Elem(), path, seen)
	case reflect.Array, reflect.Slice:
		return findGobInterface(t.Elem(), path+"[0]", seen)
	case reflect.Map:
		if p, it := findGobInterface(t.Key(), path+"[key]", seen); it != nil {
			return p, it
		}
		return findGobInterface(t.Elem(), path+"[value]", seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			ft := f.Type
			switch {
			case f.IsExported():
			case f.Anonymous:
				// An unexported embedded struct (or pointer to one) still
				// promotes its exported fields.
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() != reflect.Struct {
					continue
				}
			default:
				continue
			}
			if p, it := findGobInterface(ft, path+"."+f.Name, seen); it != nil {
				return p, it
			}
		}
	}
	return "", nil
}
