package codec

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Sentinel errors. Every error this package returns that belongs to one of
// these classes wraps it, so callers match with errors.Is. The root package
// re-exports them (shmchan.ErrTooLarge is codec.ErrTooLarge, and so on).
var (
	// ErrTooLarge: the encoded value does not fit the slot payload it was
	// given (dst is too short). The wrapping error says both sizes.
	ErrTooLarge = errors.New("shmchan: value too large for the slot")

	// ErrCorrupt: bytes read from a slot do not decode. Shared memory is
	// untrusted, so a wrong length for a raw T, a bad length inside an encoded
	// payload, or any decoder failure is reported as ErrCorrupt, never as a
	// panic.
	ErrCorrupt = errors.New("shmchan: corrupt data")

	// ErrNoCodec: T has no built-in codec. The wrapping error names the type,
	// says why (the first pointer-like part found in it), and lists the
	// codecs that do exist: codec.JSON[T]() and codec.Gob[T](), passed with
	// shmchan.WithCodec.
	ErrNoCodec = errors.New("shmchan: no codec for type")
)

// Codec turns values of T into the bytes of a slot payload and back.
//
// Implementations must be safe for concurrent use: one Codec value may serve
// several channels and goroutines at once. All codecs in this package are.
type Codec[T any] interface {
	// Name is a stable, short name of the encoding: "raw", "bytes",
	// "string", "binary", "json" or "gob". It is recorded in the region
	// header (through the fingerprint) and printed by `shmchan ls`.
	Name() string

	// Fingerprint identifies T and the codec for the region header: two
	// processes may share a region only if their fingerprints are equal.
	// For raw codecs it is RawFingerprint(T); for the others it hashes the
	// codec's name and T's package-qualified type string.
	Fingerprint() uint64

	// TypeName is T as people read it, e.g. "main.Order" or "[]uint8"
	// (reflect.Type.String). It is informational; for raw codecs it is not
	// part of the fingerprint.
	TypeName() string

	// FixedSize is the number of bytes every value encodes to when that is
	// a constant (raw codecs), else 0. It is never 0 for a raw codec, even
	// for a zero-size T (which occupies one byte on the wire).
	FixedSize() int

	// Encode writes *v into dst (a slot payload) and returns the number of
	// bytes used. If the encoding does not fit, it returns an error wrapping
	// ErrTooLarge that gives both sizes; what it may have scribbled into dst
	// meanwhile is garbage that must not be committed. Encode does not
	// retain dst.
	Encode(dst []byte, v *T) (int, error)

	// Decode reads a value from src (a committed payload, exactly its
	// committed length) into *v. src may live in shared memory that a
	// hostile peer changes while Decode runs: Decode never panics, never
	// allocates more than a bound derived from len(src), reads each byte it
	// trusts once (from its own copy where the decoder needs several passes),
	// and reports bad input as an error wrapping ErrCorrupt. Decode does not
	// retain src.
	Decode(src []byte, v *T) error
}

// For returns the default codec for T, the one shmchan uses without
// WithCodec:
//
//   - Raw[T] when T is pointer-free (see Raw);
//   - Binary[T] when *T implements encoding.BinaryAppender and
//     encoding.BinaryUnmarshaler;
//   - the bytes codec when T's underlying type is a byte slice, the string
//     codec when it is a string;
//   - otherwise an error wrapping ErrNoCodec that names T, says which part
//     of it stops it from travelling raw, and points at codec.JSON[T]() and
//     codec.Gob[T]().
//
// Results are cached per type; the returned codecs are shared and safe for
// concurrent use.
func For[T any]() (Codec[T], error) {
	t := reflect.TypeFor[T]()
	if c, ok := defaultCache.Load(t); ok {
		return c.(Codec[T]), nil
	}
	c, err := newDefault[T](t)
	if err != nil {
		return nil, err
	}
	got, _ := defaultCache.LoadOrStore(t, c)
	return got.(Codec[T]), nil
}

// Check reports a problem that makes c unusable for every value, so that it
// can be reported when a channel is created or opened rather than on the
// first Send or Recv. Today that is Gob for a T that contains interface
// values (an error wrapping ErrNoCodec); other codecs return nil.
func Check[T any](c Codec[T]) error {
	if c == nil {
		return fmt.Errorf("%w %s: nil codec", ErrNoCodec, reflect.TypeFor[T]())
	}
	if k, ok := c.(interface{ check() error }); ok {
		return k.check()
	}
	return nil
}

// defaultCache maps reflect.Type to the Codec[T] For built for it.
var defaultCache sync.Map

func newDefault[T any](t reflect.Type) (Codec[T], error) {
	l, rawErr := analyzeRaw(t)
	if rawErr == nil {
		return newRaw[T](t, l), nil
	}
	if implementsBinary(t) {
		return newBinary[T](t), nil
	}
	switch {
	case isByteSlice(t):
		return newBytes[T](t), nil
	case t.Kind() == reflect.String:
		return newString[T](t), nil
	}
	return nil, noCodecError(t, rawErr)
}

// binaryPair is what the binary codec needs from *T.
type binaryPair interface {
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

var binaryPairType = reflect.TypeFor[binaryPair]()

func implementsBinary(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(binaryPairType)
}

func isByteSlice(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

// noCodecError builds the ErrNoCodec error for t. why is the reason t cannot
// travel raw (it may be nil).
func noCodecError(t reflect.Type, why error) error {
	reason := ""
	var pe *pointerError
	if errors.As(why, &pe) {
		reason = ": " + pe.describe()
	}
	name := t.String()
	return fmt.Errorf("%w %s%s; pass shmchan.WithCodec(codec.JSON[%s]()) or "+
		"shmchan.WithCodec(codec.Gob[%s]()), or implement encoding.BinaryAppender "+
		"and encoding.BinaryUnmarshaler on *%s",
		ErrNoCodec, name, reason, name, name, name)
}

// tooLarge is the ErrTooLarge error for an encoding of need bytes offered
// room bytes.
func tooLarge(codec string, t reflect.Type, need, room int) error {
	return fmt.Errorf("codec %s: %s encodes to %d bytes, the slot payload holds %d: %w",
		codec, t, need, room, ErrTooLarge)
}

// corrupt wraps err (which may be nil) as ErrCorrupt with context.
func corrupt(codec string, t reflect.Type, err error) error {
	if err == nil {
		return fmt.Errorf("codec %s: decoding %s: %w", codec, t, ErrCorrupt)
	}
	return fmt.Errorf("codec %s: decoding %s: %w: %w", codec, t, ErrCorrupt, err)
}

// recoverCorrupt turns a panic inside a decoder (encoding/json, encoding/gob
// or a user's UnmarshalBinary fed hostile bytes) into ErrCorrupt. Use as
// `defer recoverCorrupt(&err, ...)`.
func recoverCorrupt(err *error, codec string, t reflect.Type) {
	if r := recover(); r != nil {
		*err = corrupt(codec, t, fmt.Errorf("decoder panicked: %v", r))
	}
}

// fingerprintDomain separates this package's hash inputs from anything else
// hashed with xxhash in the region header, and versions them.
const fingerprintDomain = "shmchan/codec/v1\x00"

// encodedFingerprint is the fingerprint of an encoded (non-raw) codec: its
// name and T's package-qualified type string.
func encodedFingerprint(codec string, t reflect.Type) uint64 {
	d := xxhash.New()
	_, _ = d.WriteString(fingerprintDomain)
	_, _ = d.WriteString(codec)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(qualifiedTypeString(t))
	return d.Sum64()
}

// qualifiedTypeString is like t.String() but names every named type by its
// full package path ("github.com/acme/orders.Order", not "orders.Order"), so
// two packages with the same name do not collide.
func qualifiedTypeString(t reflect.Type) string {
	var b strings.Builder
	writeQualified(&b, t)
	return b.String()
}

func writeQualified(b *strings.Builder, t reflect.Type) {
	if name := t.Name(); name != "" {
		if p := t.PkgPath(); p != "" {
			b.WriteString(p)
			b.WriteByte('.')
		}
		b.WriteString(name)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		b.WriteByte('*')
		writeQualified(b, t.Elem())
	case reflect.Slice:
		b.WriteString("[]")
		writeQualified(b, t.Elem())
	case reflect.Array:
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(t.Len()))
		b.WriteByte(']')
		writeQualified(b, t.Elem())
	case reflect.Map:
		b.WriteString("map[")
		writeQualified(b, t.Key())
		b.WriteByte(']')
		writeQualified(b, t.Elem())
	case reflect.Chan:
		switch t.ChanDir() {
		case reflect.RecvDir:
			b.WriteString("<-chan ")
		case reflect.SendDir:
			b.WriteString("chan<- ")
		default:
			b.WriteString("chan ")
		}
		writeQualified(b, t.Elem())
	case reflect.Func:
		b.WriteString("func")
		writeSignature(b, t)
	case reflect.Struct:
		b.WriteString("struct {")
		for i := range t.NumField() {
			f := t.Field(i)
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteByte(' ')
			if f.Anonymous {
				b.WriteString("embedded ")
			}
			if f.PkgPath != "" { // unexported names are per package
				b.WriteString(f.PkgPath)
				b.WriteByte('.')
			}
			b.WriteString(f.Name)
			b.WriteByte(' ')
			writeQualified(b, f.Type)
			if f.Tag != "" {
				b.WriteByte(' ')
				b.WriteString(strconv.Quote(string(f.Tag)))
			}
		}
		b.WriteString(" }")
	case reflect.Interface:
		b.WriteString("interface {")
		for i := range t.NumMethod() {
			m := t.Method(i)
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteByte(' ')
			if m.PkgPath != "" {
				b.WriteString(m.PkgPath)
				b.WriteByte('.')
			}
			b.WriteString(m.Name)
			writeSignature(b, m.Type)
		}
		b.WriteString(" }")
	default:
		b.WriteString(t.String())
	}
}

func writeSignature(b *strings.Builder, t reflect.Type) {
	b.WriteByte('(')
	for i := range t.NumIn() {
		if i > 0 {
			b.WriteString(", ")
		}
		in := t.In(i)
		if t.IsVariadic() && i == t.NumIn()-1 {
			b.WriteString("...")
			in = in.Elem()
		}
		writeQualified(b, in)
	}
	b.WriteByte(')')
	switch t.NumOut() {
	case 0:
	case 1:
		b.WriteByte(' ')
		writeQualified(b, t.Out(0))
	default:
		b.WriteString(" (")
		for i := range t.NumOut() {
			if i > 0 {
				b.WriteString(", ")
			}
			writeQualified(b, t.Out(i))
		}
		b.WriteByte(')')
	}
}

// Scratch buffers: decoders that read their input more than once (JSON,
// gob, a user's UnmarshalBinary) work on a private copy of the payload so a
// peer changing shared memory mid-decode cannot make them inconsistent.
var scratchPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// maxPooledScratch keeps the pool from pinning very large buffers.
const maxPooledScratch = 1 << 20

// copyToScratch returns a pooled buffer holding a copy of src. Release it
// with releaseScratch.
func copyToScratch(src []byte) *[]byte {
	p := scratchPool.Get().(*[]byte)
	*p = append((*p)[:0], src...)
	return p
}

func releaseScratch(p *[]byte) {
	if cap(*p) > maxPooledScratch {
		return
	}
	*p = (*p)[:0]
	scratchPool.Put(p)
}
