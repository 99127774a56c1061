package codec

import (
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/cespare/xxhash/v2"
)

// rawLayout is what the raw codec needs to know about a pointer-free T.
type rawLayout struct {
	size  int    // unsafe.Sizeof(T)
	align int    // unsafe.Alignof(T)
	bools []span // where T's bool bytes are, for normalisation on Decode
}

// span is the byte range [lo, hi) of a value.
type span struct{ lo, hi int }

// pointerError says where in a type a pointer-like part was found.
type pointerError struct {
	root reflect.Type
	path string       // ".A[0].P", empty for the type itself
	part reflect.Type // the offending type
}

func (e *pointerError) Error() string {
	return fmt.Sprintf("%v %s: %s; raw types must be pointer-free",
		ErrNoCodec, e.root, e.describe())
}

// Unwrap lets errors.Is(err, ErrNoCodec) match.
func (e *pointerError) Unwrap() error { return ErrNoCodec }

func (e *pointerError) describe() string {
	who := "it"
	if e.path != "" {
		who = "field " + e.path
	}
	return fmt.Sprintf("%s is %s (%s), so it cannot travel as raw bytes",
		who, kindPhrase(e.part.Kind()), e.part)
}

func kindPhrase(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a slice"
	case reflect.Map:
		return "a map"
	case reflect.Interface:
		return "an interface"
	case reflect.Chan:
		return "a channel"
	case reflect.Func:
		return "a func"
	case reflect.Pointer:
		return "a pointer"
	case reflect.UnsafePointer:
		return "an unsafe.Pointer"
	}
	return "a " + k.String()
}

// analyzeRaw checks that t is pointer-free at every depth and computes its
// layout. It returns a *pointerError (wrapping ErrNoCodec) otherwise.
//
// Allowed: bool, the sized and unsized integer kinds, uintptr, floats,
// complex numbers, and arrays and structs of those. A zero-length array is
// allowed whatever its element type, since it holds no bytes.
func analyzeRaw(t reflect.Type) (rawLayout, error) {
	if err := checkPointerFree(t, t, ""); err != nil {
		return rawLayout{}, err
	}
	return rawLayout{
		size:  int(t.Size()),
		align: t.Align(),
		bools: boolSpans(t, 0, nil),
	}, nil
}

func checkPointerFree(root, t reflect.Type, path string) error {
	switch t.Kind() {
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		if t.Len() == 0 {
			return nil
		}
		return checkPointerFree(root, t.Elem(), path+"[0]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if err := checkPointerFree(root, f.Type, path+"."+f.Name); err != nil {
				return err
			}
		}
		return nil
	}
	return &pointerError{root: root, path: path, part: t}
}

// boolSpans appends to spans the bool bytes of a pointer-free t placed at
// offset base, as half-open byte ranges, merging adjacent ones.
func boolSpans(t reflect.Type, base int, spans []span) []span {
	switch t.Kind() {
	case reflect.Bool:
		return appendSpan(spans, span{lo: base, hi: base + 1})
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			spans = boolSpans(f.Type, base+int(f.Offset), spans)
		}
	case reflect.Array:
		l, es := t.Len(), int(t.Elem().Size())
		if l == 0 || es == 0 {
			return spans
		}
		inner := boolSpans(t.Elem(), 0, nil)
		switch {
		case len(inner) == 0:
		case len(inner) == 1 && inner[0] == span{lo: 0, hi: es}:
			// The element is all bools: so is the array.
			spans = appendSpan(spans, span{lo: base, hi: base + l*es})
		default:
			for k := range l {
				for _, s := range inner {
					spans = appendSpan(spans, span{lo: base + k*es + s.lo, hi: base + k*es + s.hi})
				}
			}
		}
	}
	return spans
}

func appendSpan(spans []span, s span) []span {
	if n := len(spans); n > 0 && spans[n-1].hi == s.lo {
		spans[n-1].hi = s.hi
		return spans
	}
	return append(spans, s)
}

// RawFingerprint hashes the structure of a pointer-free type: its kind,
// size and alignment and, recursively, array lengths and element types and
// struct field names, offsets and types. The type's own name and package
// path are not part of it (nor are struct tags), so two distinct named types
// with identical structure match; a renamed field, reordered fields, a
// different field type or kind (int64 vs uint64, int vs int64), a different
// array length or a different nesting (int32 vs struct{ X int32 }) do not.
//
// It returns an error wrapping ErrNoCodec if t is not pointer-free.
func RawFingerprint(t reflect.Type) (uint64, error) {
	if t == nil {
		return 0, fmt.Errorf("%w <nil>", ErrNoCodec)
	}
	if err := checkPointerFree(t, t, ""); err != nil {
		return 0, err
	}
	return rawFingerprint(t), nil
}

// rawFingerprint assumes t is pointer-free.
func rawFingerprint(t reflect.Type) uint64 {
	b := make([]byte, 0, 256)
	b = append(b, fingerprintDomain...)
	b = append(b, "raw\x00"...)
	b = appendStructure(b, t)
	return xxhash.Sum64(b)
}

// appendStructure writes a prefix-free description of t: every variable-size
// part is preceded by its count or length.
func appendStructure(b []byte, t reflect.Type) []byte {
	b = append(b, byte(t.Kind()))
	b = binary.AppendUvarint(b, uint64(t.Size()))
	b = binary.AppendUvarint(b, uint64(t.Align()))
	switch t.Kind() {
	case reflect.Array:
		b = binary.AppendUvarint(b, uint64(t.Len()))
		if t.Len() == 0 {
			// The element of an empty array may be anything (even a
			// pointer); describe it shallowly.
			e := t.Elem()
			b = append(b, byte(e.Kind()))
			b = binary.AppendUvarint(b, uint64(e.Size()))
			return binary.AppendUvarint(b, uint64(e.Align()))
		}
		return appendStructure(b, t.Elem())
	case reflect.Struct:
		b = binary.AppendUvarint(b, uint64(t.NumField()))
		for i := range t.NumField() {
			f := t.Field(i)
			b = binary.AppendUvarint(b, uint64(len(f.Name)))
			b = append(b, f.Name...)
			b = binary.AppendUvarint(b, uint64(f.Offset))
			b = appendStructure(b, f.Type)
		}
	}
	return b
}
