package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Types shared by the tests, fuzz targets and benchmarks.

type inner struct {
	A int16
	B [3]uint8
	C float64
}

type order struct {
	ID     uint64
	Price  int64
	Qty    int32
	Side   bool
	Tags   [4]inner
	Flags  [3]bool
	Nested struct{ X, Y float32 }
	Ptrish uintptr
	Cplx   complex128
}

// boolsT has bool bytes in every arrangement boolRuns folds.
type boolsT struct {
	A bool
	B [3]bool
	C int32
	D [2]struct {
		X bool
		Y int16
		Z [2]bool
	}
	E [2][3]struct {
		P bool
		Q uint8
	}
	F struct{ G [2][2]bool }
	H uint8
	I [2][2]struct {
		J int64
		K bool
	}
	L [0]bool
	M [2]struct {
		N [0]func()
		O [2]struct {
			P bool
			Q [3]bool
			R int32
		}
	}
}

type raw16 struct{ A, B uint64 }

type raw256 struct {
	Header [4]uint64
	Body   [28]uint64
}

// point implements encoding.BinaryAppender and encoding.BinaryUnmarshaler:
// two int32s, then a uvarint length and the label.
type point struct {
	X, Y  int32
	Label string
}

func (p *point) AppendBinary(b []byte) ([]byte, error) {
	if len(p.Label) > 1<<16 {
		return b, errors.New("point: label too long")
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(p.X))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Y))
	b = binary.AppendUvarint(b, uint64(len(p.Label)))
	return append(b, p.Label...), nil
}

func (p *point) UnmarshalBinary(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("point: %d bytes, want at least 8", len(b))
	}
	x := int32(binary.LittleEndian.Uint32(b))
	y := int32(binary.LittleEndian.Uint32(b[4:]))
	n, k := binary.Uvarint(b[8:])
	if k <= 0 {
		return errors.New("point: bad label length")
	}
	rest := b[8+k:]
	if n != uint64(len(rest)) {
		return fmt.Errorf("point: label length %d, %d bytes left", n, len(rest))
	}
	p.X, p.Y, p.Label = x, y, string(rest)
	return nil
}

// newAppender always returns a fresh buffer instead of appending to b.
type newAppender struct{ V [4]byte }

func (a *newAppender) AppendBinary(b []byte) ([]byte, error) {
	out := make([]byte, 0, 16)
	return append(out, a.V[:]...), nil
}

func (a *newAppender) UnmarshalBinary(b []byte) error {
	if len(b) != 4 {
		return errors.New("newAppender: want 4 bytes")
	}
	copy(a.V[:], b)
	return nil
}

// blob and label are named byte-slice and string types.
type (
	blob  []byte
	label string
)

type item struct {
	K string
	V float64
	B [4]byte
}

// doc is the structured type for the JSON and Gob codecs: maps, slices,
// nested structs, a recursive pointer and a type gob treats as opaque.
type doc struct {
	Name   string
	Tags   []string
	Counts map[string]int
	Items  []item
	Sub    map[string][]item
	When   time.Time
	Big    *big.Int
	Grid   [2][2]int8
	Next   *doc
	hidden int
}

func sampleDoc() doc {
	return doc{
		Name:   "order book",
		Tags:   []string{"a", "", "ccc"},
		Counts: map[string]int{"x": 1, "y": -2, "": 0},
		Items:  []item{{K: "k1", V: 1.5, B: [4]byte{1, 2, 3, 4}}, {}},
		Sub:    map[string][]item{"s": {{K: "deep", V: -3}}, "empty": nil},
		When:   time.Date(2024, 2, 29, 12, 30, 0, 123, time.UTC),
		Big:    new(big.Int).Lsh(big.NewInt(1), 100),
		Grid:   [2][2]int8{{1, -1}, {0, 127}},
		Next:   &doc{Name: "next", Tags: []string{"t"}, Next: &doc{Name: "last"}},
	}
}
