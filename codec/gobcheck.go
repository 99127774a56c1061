package codec

import (
	"errors"
	"fmt"
	"math"
)

// This file validates an encoding/gob stream before encoding/gob decodes it.
//
// encoding/gob trusts counts it reads: a map length becomes a
// reflect.MakeMapWithSize hint (tens of bytes can ask for gigabytes; Go issue
// 79539), a message or slice length can preallocate up to 10 MiB each, and a
// map of structs sitting at the end of the buffer loops as many times as the
// count says while consuming nothing. checkGob walks the stream the way
// encoding/gob's Decoder will and rejects it if any count is larger than the
// bytes that remain could hold, so that encoding/gob, run on the same
// (private) bytes afterwards, does work and allocation bounded by the input.
//
// The walk is driven by the wire types the stream defines, not by the Go
// type being decoded into. For the two to read the bytes the same way, the
// Go type must not contain interface values gob would decode: then every
// interface value on the wire belongs to a field the receiver ignores, which
// gob skips by its byte count, and so does this walker. (An interface value
// gob decodes is walked differently: its count is ignored and nested type
// definitions can make it disagree with the content.) Gob enforces that
// restriction on T.
//
// Everything else mirrors encoding/gob (decode.go, decoder.go, type.go):
// the unsigned integer encoding, message framing, type sequences (with the
// buffer reload gob performs when an interface's type definitions end a
// message), the struct field-delta rules, the wireType layout, and the
// per-element "input exhausted" check of arrays and slices. Where gob is
// lenient about something its encoder never produces (empty messages, a
// struct cut off by the end of its message, undefined or reserved type ids,
// a wire type that sets several kinds, an id outside int32, a negative
// array length) the walker is stricter: rejecting is always safe.
//
// With every value at least one byte long and every counted element walked,
// a stream that passes makes encoding/gob allocate in proportion to the
// values really present. What each value costs in memory still depends on T
// (a struct holding a [4096]byte array encodes as one byte when zero); that
// amplification is T's, the same for any decoder.

// Built-in gob type ids (encoding/gob/type.go).
const (
	gobBool      = 1
	gobInt       = 2
	gobUint      = 3
	gobFloat     = 4
	gobBytes     = 5
	gobString    = 6
	gobComplex   = 7
	gobInterface = 8

	gobFirstUserID = 64
)

// gobMaxDepth bounds the nesting of values (and so the recursion of both
// this walker and encoding/gob).
const gobMaxDepth = 10000

// Kinds of user-defined wire types.
const (
	wireArray = iota + 1
	wireSlice
	wireStruct
	wireMap
	wireOpaque // GobEncoder, BinaryMarshaler or TextMarshaler: a byte string
)

type gobWire struct {
	kind      int
	elem, key int32
	length    int64   // arrays
	fields    []int32 // structs: the type id of each field
}

type gobWalker struct {
	stream []byte // the rest of the stream after the current message
	buf    []byte // the rest of the current message
	types  map[int32]*gobWire
	depth  int
}

var (
	errGobShort    = errors.New("gob: input ends early")
	errGobBadUint  = errors.New("gob: bad unsigned integer encoding")
	errGobRange    = errors.New("gob: field number out of range")
	errGobTooDeep  = errors.New("gob: nesting too deep")
	errGobBadCount = errors.New("gob: count exceeds the input")
)

// checkGob validates a stream holding one value, as written by one
// gob.Encoder.Encode call on a fresh Encoder.
func checkGob(src []byte) error {
	w := &gobWalker{stream: src, types: make(map[int32]*gobWire)}
	id, err := w.typeSequence(false)
	if err != nil {
		return err
	}
	if err := w.topValue(id); err != nil {
		return err
	}
	if len(w.buf) != 0 || len(w.stream) != 0 {
		return fmt.Errorf("gob: %d bytes after the value", len(w.buf)+len(w.stream))
	}
	return nil
}

// readUint decodes one gob unsigned integer from *b: a byte below 0x80 is
// the value; otherwise its negation is the count (at most 8) of big-endian
// bytes that follow.
func readUint(b *[]byte) (uint64, error) {
	s := *b
	if len(s) == 0 {
		return 0, errGobShort
	}
	c := s[0]
	if c <= 0x7f {
		*b = s[1:]
		return uint64(c), nil
	}
	n := -int(int8(c))
	if n > 8 {
		return 0, errGobBadUint
	}
	if len(s) < 1+n {
		return 0, errGobShort
	}
	var x uint64
	for _, d := range s[1 : 1+n] {
		x = x<<8 | uint64(d)
	}
	*b = s[1+n:]
	return x, nil
}

func (w *gobWalker) uint() (uint64, error) { return readUint(&w.buf) }

func (w *gobWalker) int() (int64, error) {
	x, err := w.uint()
	if x&1 != 0 {
		return ^int64(x >> 1), err
	}
	return int64(x >> 1), err
}

// int32 reads a signed integer that gob stores into an int32 (typeId).
func (w *gobWalker) int32() (int32, error) {
	x, err := w.int()
	if err != nil {
		return 0, err
	}
	if x < math.MinInt32 || x > math.MaxInt32 {
		return 0, fmt.Errorf("gob: type id %d out of range", x)
	}
	return int32(x), nil
}

// skipBytes reads a length and skips that many bytes of the current
// message, as gob does for strings, []byte, opaque values and the parts of
// an ignored interface value.
func (w *gobWalker) skipBytes() error {
	n, err := w.uint()
	if err != nil {
		return err
	}
	if n > uint64(len(w.buf)) {
		return errGobBadCount
	}
	w.buf = w.buf[n:]
	return nil
}

// remaining is how many bytes later values can still come from, counting
// messages gob may load in the middle of a value.
func (w *gobWalker) remaining() uint64 {
	return uint64(len(w.buf)) + uint64(len(w.stream))
}

// recvMessage makes the next count-delimited message the current buffer.
func (w *gobWalker) recvMessage() error {
	n, err := readUint(&w.stream)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("gob: empty message")
	}
	if n > uint64(len(w.stream)) {
		return errGobBadCount
	}
	w.buf, w.stream = w.stream[:n], w.stream[n:]
	return nil
}

// typeSequence reads type definitions up to the id of the next value
// (encoding/gob's decodeTypeSequence).
func (w *gobWalker) typeSequence(isInterface bool) (int32, error) {
	for {
		if len(w.buf) == 0 {
			if err := w.recvMessage(); err != nil {
				return 0, err
			}
		}
		x, err := w.int()
		if err != nil {
			return 0, err
		}
		if x >= 0 {
			if x > math.MaxInt32 {
				return 0, fmt.Errorf("gob: type id %d out of range", x)
			}
			return int32(x), nil
		}
		if x < -math.MaxInt32 {
			return 0, fmt.Errorf("gob: type id %d out of range", x)
		}
		if err := w.recvType(int32(-x)); err != nil {
			return 0, err
		}
		if len(w.buf) > 0 {
			if !isInterface {
				return 0, errors.New("gob: extra data after a type definition")
			}
			// gob skips the count of the delimited item that follows.
			if _, err := w.uint(); err != nil {
				return 0, err
			}
		}
	}
}

// recvType parses a wireType definition for id.
func (w *gobWalker) recvType(id int32) error {
	if id < gobFirstUserID || w.types[id] != nil {
		return fmt.Errorf("gob: bad or duplicate type id %d", id)
	}
	wt := new(gobWire)
	kinds := 0
	err := w.structFields(7, func(field int) error {
		kinds++
		switch field {
		case 0: // ArrayT *arrayType {CommonType; Elem typeId; Len int}
			wt.kind = wireArray
			return w.structFields(3, func(f int) error {
				switch f {
				case 0:
					return w.commonType()
				case 1:
					return w.readID(&wt.elem)
				default:
					var err error
					wt.length, err = w.int()
					return err
				}
			})
		case 1: // SliceT *sliceType {CommonType; Elem typeId}
			wt.kind = wireSlice
			return w.structFields(2, func(f int) error {
				if f == 0 {
					return w.commonType()
				}
				return w.readID(&wt.elem)
			})
		case 2: // StructT *structType {CommonType; Field []fieldType}
			wt.kind = wireStruct
			return w.structFields(2, func(f int) error {
				if f == 0 {
					return w.commonType()
				}
				return w.fieldTypes(wt)
			})
		case 3: // MapT *mapType {CommonType; Key, Elem typeId}
			wt.kind = wireMap
			return w.structFields(3, func(f int) error {
				switch f {
				case 0:
					return w.commonType()
				case 1:
					return w.readID(&wt.key)
				default:
					return w.readID(&wt.elem)
				}
			})
		default: // GobEncoderT, BinaryMarshalerT, TextMarshalerT *gobEncoderType {CommonType}
			wt.kind = wireOpaque
			return w.structFields(1, func(int) error { return w.commonType() })
		}
	})
	if err != nil {
		return err
	}
	if kinds != 1 {
		return fmt.Errorf("gob: type %d defines %d kinds", id, kinds)
	}
	w.types[id] = wt
	return nil
}

func (w *gobWalker) readID(dst *int32) error {
	id, err := w.int32()
	*dst = id
	return err
}

// commonType parses CommonType {Name string; Id typeId}.
func (w *gobWalker) commonType() error {
	return w.structFields(2, func(f int) error {
		if f == 0 {
			return w.skipBytes()
		}
		var id int32
		return w.readID(&id)
	})
}

// fieldTypes parses structType.Field, a []fieldType{Name string; Id typeId}.
func (w *gobWalker) fieldTypes(wt *gobWire) error {
	n, err := w.uint()
	if err != nil {
		return err
	}
	if n > uint64(len(w.buf)) {
		return errGobBadCount
	}
	wt.fields = make([]int32, 0, n)
	for range n {
		if len(w.buf) == 0 {
			return errGobShort
		}
		var id int32
		named := false
		err := w.structFields(2, func(f int) error {
			if f == 0 {
				l, err := w.uint()
				if err != nil {
					return err
				}
				if l > uint64(len(w.buf)) {
					return errGobBadCount
				}
				named = l > 0
				w.buf = w.buf[l:]
				return nil
			}
			return w.readID(&id)
		})
		if err != nil {
			return err
		}
		if !named {
			return errors.New("gob: struct field without a name")
		}
		wt.fields = append(wt.fields, id)
	}
	return nil
}

// structFields walks a struct encoding with nfields fields: field-number
// deltas, each followed by that field's value (read by fn), ending at a zero
// delta. gob's decodeStruct also accepts the end of the message as the end of
// a struct; the walker does not (gob's encoder always writes the zero delta),
// so that every value takes at least one byte and a count of values can
// never stand for more values than there are bytes.
func (w *gobWalker) structFields(nfields int, fn func(field int) error) error {
	field := -1
	for {
		d, err := w.uint()
		if err != nil {
			return err
		}
		if d == 0 {
			return nil
		}
		if d > uint64(nfields) || field+int(d) >= nfields {
			return errGobRange
		}
		field += int(d)
		if err := fn(field); err != nil {
			return err
		}
	}
}

// topValue walks the top-level value: a struct, or any other type as a
// "singleton" preceded by a zero delta.
func (w *gobWalker) topValue(id int32) error {
	if wt := w.types[id]; wt != nil && wt.kind == wireStruct {
		return w.structValue(wt)
	}
	d, err := w.uint()
	if err != nil {
		return err
	}
	if d != 0 {
		return errors.New("gob: non-zero delta for a singleton")
	}
	return w.value(id)
}

func (w *gobWalker) structValue(wt *gobWire) error {
	return w.structFields(len(wt.fields), func(f int) error {
		return w.value(wt.fields[f])
	})
}

// value walks one value of wire type id.
func (w *gobWalker) value(id int32) error {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > gobMaxDepth {
		return errGobTooDeep
	}
	switch id {
	case gobBool, gobInt, gobUint, gobFloat:
		_, err := w.uint()
		return err
	case gobComplex:
		if _, err := w.uint(); err != nil {
			return err
		}
		_, err := w.uint()
		return err
	case gobBytes, gobString:
		return w.skipBytes()
	case gobInterface:
		return w.ignoredInterface()
	}
	wt := w.types[id]
	if id < gobFirstUserID || wt == nil {
		return fmt.Errorf("gob: undefined type id %d", id)
	}
	switch wt.kind {
	case wireArray:
		n, err := w.uint()
		if err != nil {
			return err
		}
		if wt.length < 0 || n != uint64(wt.length) {
			return errors.New("gob: array length mismatch")
		}
		return w.elements(wt.elem, n)
	case wireSlice:
		n, err := w.uint()
		if err != nil {
			return err
		}
		if n > w.remaining() {
			return errGobBadCount
		}
		return w.elements(wt.elem, n)
	case wireMap:
		n, err := w.uint()
		if err != nil {
			return err
		}
		// Every key and every element takes at least one byte.
		if n > w.remaining()/2 {
			return errGobBadCount
		}
		for range n {
			if err := w.value(wt.key); err != nil {
				return err
			}
			if err := w.value(wt.elem); err != nil {
				return err
			}
		}
		return nil
	case wireStruct:
		return w.structValue(wt)
	default: // wireOpaque
		return w.skipBytes()
	}
}

// elements walks n array or slice elements; like gob, it fails when the
// message runs out before an element.
func (w *gobWalker) elements(elem int32, n uint64) error {
	for range n {
		if len(w.buf) == 0 {
			return errGobShort
		}
		if err := w.value(elem); err != nil {
			return err
		}
	}
	return nil
}

// ignoredInterface skips an interface value the way gob's ignoreInterface
// does: the concrete type's name, a type sequence (which may define types
// and load the next message), the concrete type id, then a byte count and
// that many bytes.
func (w *gobWalker) ignoredInterface() error {
	if err := w.skipBytes(); err != nil {
		return err
	}
	if _, err := w.typeSequence(true); err != nil {
		return err
	}
	return w.skipBytes()
}
