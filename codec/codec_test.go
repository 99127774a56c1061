package codec

import (
	"bytes"
	"encoding/gob"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// roundTrip encodes v with c into a buffer of room bytes and decodes it
// back into a fresh T.
func roundTrip[T any](t *testing.T, c Codec[T], v T, room int) T {
	t.Helper()
	buf := make([]byte, room)
	n, err := c.Encode(buf, &v)
	if err != nil {
		t.Fatalf("%s Encode(%s): %v", c.Name(), c.TypeName(), err)
	}
	if fs := c.FixedSize(); fs != 0 && n != fs {
		t.Fatalf("%s Encode used %d bytes, FixedSize is %d", c.Name(), n, fs)
	}
	var got T
	if err := c.Decode(buf[:n], &got); err != nil {
		t.Fatalf("%s Decode(%s): %v", c.Name(), c.TypeName(), err)
	}
	return got
}

func mustFor[T any](t *testing.T) Codec[T] {
	t.Helper()
	c, err := For[T]()
	if err != nil {
		t.Fatalf("For[%T]: %v", *new(T), err)
	}
	return c
}

func checkRoundTrip[T any](t *testing.T, c Codec[T], v T) {
	t.Helper()
	got := roundTrip(t, c, v, 1<<16)
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("%s round trip of %s:\n got %#v\nwant %#v", c.Name(), c.TypeName(), got, v)
	}
}

func TestRawRoundTrip(t *testing.T) {
	o := order{ID: 1, Price: -5, Qty: 7, Side: true, Ptrish: 0xdeadbeef, Cplx: complex(1, -2)}
	o.Tags[2] = inner{A: -3, B: [3]uint8{1, 2, 3}, C: math.Inf(-1)}
	o.Flags[1] = true
	o.Nested.Y = 2.5
	t.Run("order", func(t *testing.T) { checkRoundTrip(t, mustFor[order](t), o) })
	t.Run("int64", func(t *testing.T) { checkRoundTrip(t, mustFor[int64](t), math.MinInt64) })
	t.Run("uint8", func(t *testing.T) { checkRoundTrip(t, mustFor[uint8](t), 200) })
	t.Run("bool", func(t *testing.T) { checkRoundTrip(t, mustFor[bool](t), true) })
	t.Run("array", func(t *testing.T) { checkRoundTrip(t, mustFor[[16]byte](t), [16]byte{15: 9}) })
	t.Run("nested-arrays", func(t *testing.T) {
		checkRoundTrip(t, mustFor[[2][3]inner](t), [2][3]inner{{{A: 1}}, {{}, {}, {C: 3}}})
	})
	t.Run("zero-length-func-array", func(t *testing.T) {
		type marked struct {
			_ [0]func()
			X int32
		}
		checkRoundTrip(t, mustFor[marked](t), marked{X: 5})
	})
	t.Run("NaN", func(t *testing.T) {
		c := mustFor[float64](t)
		nan := math.Float64frombits(0x7ff8_0000_dead_beef)
		got := roundTrip(t, c, nan, 8)
		if math.Float64bits(got) != math.Float64bits(nan) {
			t.Fatalf("NaN payload changed: %x", math.Float64bits(got))
		}
	})
	t.Run("zero-size", func(t *testing.T) {
		c := mustFor[struct{}](t)
		if c.FixedSize() != 1 {
			t.Fatalf("FixedSize of struct{} = %d, want 1", c.FixedSize())
		}
		rc, _ := AsRaw(c)
		if rc.Size() != 0 {
			t.Fatalf("Size of struct{} = %d", rc.Size())
		}
		buf := []byte{0xAA}
		var v struct{}
		if n, err := c.Encode(buf, &v); n != 1 || err != nil {
			t.Fatalf("Encode = %d, %v", n, err)
		}
		if err := c.Decode([]byte{0x7f}, &v); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if err := c.Decode(nil, &v); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode of 0 bytes: %v", err)
		}
		if _, err := c.Encode(nil, &v); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Encode into 0 bytes: %v", err)
		}
	})
	t.Run("identity", func(t *testing.T) {
		c := mustFor[order](t)
		if c.Name() != "raw" || !IsRaw(c) || c.FixedSize() != int(unsafe.Sizeof(order{})) {
			t.Fatalf("For[order] = %s, raw %v, size %d", c.Name(), IsRaw(c), c.FixedSize())
		}
		if c.TypeName() != "codec.order" {
			t.Fatalf("TypeName = %q", c.TypeName())
		}
		if c2 := mustFor[order](t); c2 != c {
			t.Fatal("For is not cached")
		}
		fp, err := RawFingerprint(reflect.TypeFor[order]())
		if err != nil || fp != c.Fingerprint() {
			t.Fatalf("Fingerprint %x, RawFingerprint %x, %v", c.Fingerprint(), fp, err)
		}
	})
}

func TestRawEncodeLonger(t *testing.T) {
	c := mustFor[raw16](t)
	buf := bytes.Repeat([]byte{0xEE}, 20)
	v := raw16{A: 1, B: 2}
	n, err := c.Encode(buf, &v)
	if n != 16 || err != nil {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	if !bytes.Equal(buf[16:], []byte{0xEE, 0xEE, 0xEE, 0xEE}) {
		t.Fatal("Encode wrote past FixedSize")
	}
}

func TestRawCorruptLength(t *testing.T) {
	c := mustFor[order](t)
	size := c.FixedSize()
	var v order
	for _, n := range []int{0, 1, size - 1, size + 1, 2 * size} {
		err := c.Decode(make([]byte, n), &v)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode of %d bytes (want %d): %v", n, size, err)
		}
		if !strings.Contains(err.Error(), "codec.order") {
			t.Fatalf("error does not name the type: %v", err)
		}
	}
}

// boolOffsets lists the offsets of every bool byte in t, element by element
// (independently of boolRuns).
func boolOffsets(t reflect.Type, base int, out map[int]bool) {
	switch t.Kind() {
	case reflect.Bool:
		out[base] = true
	case reflect.Array:
		for i := range t.Len() {
			boolOffsets(t.Elem(), base+i*int(t.Elem().Size()), out)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			boolOffsets(f.Type, base+int(f.Offset), out)
		}
	}
}

func expandSpans(spans []span) map[int]bool {
	out := map[int]bool{}
	for _, s := range spans {
		for i := s.lo; i < s.hi; i++ {
			out[i] = true
		}
	}
	return out
}

func TestBoolSpans(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[boolsT](),
		reflect.TypeFor[order](),
		reflect.TypeFor[bool](),
		reflect.TypeFor[[5]bool](),
		reflect.TypeFor[[3][4]bool](),
		reflect.TypeFor[[3]struct {
			A [2]struct {
				B bool
				C int16
			}
			D bool
		}](),
		reflect.TypeFor[[2][2][2]struct {
			A int32
			B [3]bool
		}](),
		reflect.TypeFor[raw256](),
		reflect.TypeFor[struct{}](),
	} {
		want := map[int]bool{}
		boolOffsets(typ, 0, want)
		spans := boolSpans(typ, 0, nil)
		got := expandSpans(spans)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: spans %v cover %v, want %v", typ, spans, got, want)
		}
		if len(want) == 0 && spans != nil {
			t.Errorf("%s: no bools but spans %v", typ, spans)
		}
		for i := 1; i < len(spans); i++ {
			if spans[i-1].hi >= spans[i].lo {
				t.Errorf("%s: spans %v not merged or not sorted", typ, spans)
			}
		}
	}
	if spans := boolSpans(reflect.TypeFor[[1 << 16][2]bool](), 0, nil); len(spans) != 1 {
		t.Errorf("[65536][2]bool: %d spans", len(spans))
	}
	if spans := boolSpans(reflect.TypeFor[struct {
		A bool
		B [3]bool
		C [2]struct{ D, E bool }
	}](), 0, nil); len(spans) != 1 {
		t.Errorf("contiguous bools: %v", spans)
	}
}

func TestRawBoolNormalisation(t *testing.T) {
	c, err := Raw[boolsT]()
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := AsRaw(c)
	if !rc.HasBool() {
		t.Fatal("HasBool false for boolsT")
	}
	if rc2, _ := AsRaw(mustFor[raw16](t)); rc2.HasBool() {
		t.Fatal("HasBool true for raw16")
	}
	offs := map[int]bool{}
	boolOffsets(reflect.TypeFor[boolsT](), 0, offs)
	for _, fill := range []byte{0, 1, 2, 0x80, 0xFF} {
		src := bytes.Repeat([]byte{fill}, c.FixedSize())
		var v boolsT
		if err := c.Decode(src, &v); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, c.FixedSize())
		if _, err := c.Encode(out, &v); err != nil {
			t.Fatal(err)
		}
		for i, b := range out {
			want := fill
			if offs[i] && fill != 0 {
				want = 1
			}
			if b != want {
				t.Fatalf("fill %#x: byte %d = %#x, want %#x (bool %v)", fill, i, b, want, offs[i])
			}
		}
		if fill != 0 && (!v.A || !v.B[2] || !v.M[1].O[1].Q[2]) {
			t.Fatalf("fill %#x: bools not true", fill)
		}
	}
}

func TestRawView(t *testing.T) {
	c := mustFor[raw16](t)
	rc, ok := AsRaw(c)
	if !ok {
		t.Fatal("not raw")
	}
	backing := make([]uint64, 4)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&backing[0])), 32)
	p, ok := rc.View(buf)
	if !ok {
		t.Fatal("View of an aligned buffer failed")
	}
	p.A, p.B = 7, 9
	var v raw16
	if err := c.Decode(buf[:16], &v); err != nil || v != (raw16{7, 9}) {
		t.Fatalf("Decode after View write: %+v, %v", v, err)
	}
	if _, ok := rc.View(buf[1:]); ok {
		t.Fatal("View of a misaligned buffer succeeded")
	}
	if _, ok := rc.View(buf[:15]); ok {
		t.Fatal("View of a short buffer succeeded")
	}
	if rc.Align() != 8 {
		t.Fatalf("Align = %d", rc.Align())
	}
}

func TestBytesRoundTrip(t *testing.T) {
	c := mustFor[[]byte](t)
	if c.Name() != "bytes" || c.FixedSize() != 0 || IsRaw(c) || c.TypeName() != "[]uint8" {
		t.Fatalf("For[[]byte] = %s %d %v %q", c.Name(), c.FixedSize(), IsRaw(c), c.TypeName())
	}
	if Bytes().Fingerprint() != c.Fingerprint() {
		t.Fatal("Bytes() and For[[]byte] disagree")
	}
	for _, v := range [][]byte{[]byte("hello"), bytes.Repeat([]byte{0, 0xFF}, 5000), {0}} {
		checkRoundTrip(t, c, v)
	}
	// nil and empty both decode, into a fresh value, as nil.
	for _, v := range [][]byte{nil, {}} {
		if got := roundTrip(t, c, v, 8); got != nil {
			t.Fatalf("round trip of %#v = %#v, want nil", v, got)
		}
	}
	// Into a slice with a backing array: empty and non-nil, same array.
	dst := make([]byte, 3, 64)
	if err := c.Decode(nil, &dst); err != nil || dst == nil || len(dst) != 0 || cap(dst) != 64 {
		t.Fatalf("Decode of empty into a buffer: %#v cap %d, %v", dst, cap(dst), err)
	}
	src := []byte("abc")
	if err := c.Decode(src, &dst); err != nil || string(dst) != "abc" || cap(dst) != 64 {
		t.Fatalf("Decode reused nothing: %q cap %d", dst, cap(dst))
	}
	src[0] = 'X'
	if dst[0] != 'a' {
		t.Fatal("Decode aliases src")
	}
	t.Run("named", func(t *testing.T) {
		c := mustFor[blob](t)
		if c.Name() != "bytes" || c.Fingerprint() == Bytes().Fingerprint() {
			t.Fatalf("For[blob] = %s, fingerprint equal to []byte's", c.Name())
		}
		checkRoundTrip(t, c, blob("named"))
	})
}

func TestStringRoundTrip(t *testing.T) {
	c := mustFor[string](t)
	if c.Name() != "string" || c.FixedSize() != 0 || String().Fingerprint() != c.Fingerprint() {
		t.Fatalf("For[string] = %s", c.Name())
	}
	for _, v := range []string{"", "héllo, 世界", strings.Repeat("x", 10000), "\x00\xff"} {
		checkRoundTrip(t, c, v)
	}
	checkRoundTrip(t, mustFor[label](t), label("named"))
}

func TestBinaryRoundTrip(t *testing.T) {
	c := mustFor[point](t)
	if c.Name() != "binary" || c.FixedSize() != 0 {
		t.Fatalf("For[point] = %s", c.Name())
	}
	if Binary[point]().Fingerprint() != c.Fingerprint() {
		t.Fatal("Binary[point] and For[point] disagree")
	}
	for _, v := range []point{{}, {X: -1, Y: 1 << 30, Label: "p"}, {Label: strings.Repeat("é", 300)}} {
		checkRoundTrip(t, c, v)
	}
	// An appender that ignores the buffer it is given is copied in.
	ca := Binary[newAppender]()
	checkRoundTrip(t, ca, newAppender{V: [4]byte{1, 2, 3, 4}})
	buf := make([]byte, 3)
	if _, err := ca.Encode(buf, &newAppender{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("newAppender into 3 bytes: %v", err)
	}
	// The appender cannot write past the payload even if dst has capacity.
	backing := bytes.Repeat([]byte{0xEE}, 64)
	v := point{Label: strings.Repeat("z", 40)}
	if _, err := c.Encode(backing[:10], &v); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Encode into 10 bytes: %v", err)
	}
	if !bytes.Equal(backing[10:], bytes.Repeat([]byte{0xEE}, 54)) {
		t.Fatal("binary Encode wrote past the payload into the slice's capacity")
	}
	var p point
	if err := c.Decode([]byte{1, 2, 3}, &p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode of 3 bytes: %v", err)
	}
}

// checkNoStaleFields checks that Decode replaces *v entirely: no field of
// what was there survives (gob, for one, omits zero fields).
func checkNoStaleFields(t *testing.T, c Codec[doc]) {
	t.Helper()
	stale := doc{Name: "stale", Counts: map[string]int{"old": 1}}
	buf := make([]byte, 4096)
	n, err := c.Encode(buf, &doc{Tags: []string{"new"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(buf[:n], &stale); err != nil || stale.Name != "" || stale.Counts != nil {
		t.Fatalf("Decode kept stale fields: %+v, %v", stale, err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	c := JSON[doc]()
	if c.Name() != "json" || c.FixedSize() != 0 || IsRaw(c) {
		t.Fatalf("JSON = %s", c.Name())
	}
	v := sampleDoc()
	v.hidden = 5
	got := roundTrip(t, c, v, 1<<16)
	if got.hidden != 0 {
		t.Fatal("unexported field travelled")
	}
	v.hidden = 0
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("json round trip:\n got %#v\nwant %#v", got, v)
	}
	checkNoStaleFields(t, c)
	var d doc
	for _, bad := range []string{"", "{", `{"Name": 5}`, `{"Counts": {"a": "b"}}`, `[]`, `{} x`} {
		if err := c.Decode([]byte(bad), &d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(%q): %v", bad, err)
		}
	}
	checkRoundTrip(t, JSON[[]byte](), []byte("json bytes"))
}

func TestGobRoundTrip(t *testing.T) {
	c := Gob[doc]()
	if c.Name() != "gob" || c.FixedSize() != 0 || IsRaw(c) {
		t.Fatalf("Gob = %s", c.Name())
	}
	v := sampleDoc()
	got := roundTrip(t, c, v, 1<<16)
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("gob round trip:\n got %#v\nwant %#v", got, v)
	}
	checkNoStaleFields(t, c)
	t.Run("singletons", func(t *testing.T) {
		checkRoundTrip(t, Gob[int](), -42)
		checkRoundTrip(t, Gob[string](), "gob string")
		checkRoundTrip(t, Gob[[]byte](), []byte{1, 2, 3})
		checkRoundTrip(t, Gob[map[string][]int](), map[string][]int{"a": {1, 2}, "b": nil})
		checkRoundTrip(t, Gob[[]item](), []item{{K: "x"}, {V: 2}})
		checkRoundTrip(t, Gob[[3]int16](), [3]int16{1, -2, 3})
		checkRoundTrip(t, Gob[complex64](), complex64(complex(1, 2)))
		checkRoundTrip(t, Gob[order](), order{ID: 9, Side: true})
	})
	t.Run("embedded", func(t *testing.T) {
		type Base struct{ ID int }
		type Extra struct{ K string }
		type derived struct {
			Base
			*Extra
			M map[int]map[string]bool
		}
		v := derived{Base: Base{ID: 3}, Extra: &Extra{K: "promoted"}, M: map[int]map[string]bool{1: {"t": true}}}
		checkRoundTrip(t, Gob[derived](), v)
	})
	t.Run("long-list", func(t *testing.T) {
		type node struct {
			V    int
			Next *node
		}
		var head *node
		for i := range 1000 {
			head = &node{V: i, Next: head}
		}
		got := roundTrip(t, Gob[node](), *head, 1<<16)
		k := 0
		for p := &got; p != nil; p = p.Next {
			k++
		}
		if k != 1000 || got.V != 999 {
			t.Fatalf("list of %d, head %d", k, got.V)
		}
	})
}

func TestGobInterfaceRefused(t *testing.T) {
	type withAny struct {
		A any
	}
	type nestedAny struct {
		M map[string][]withAny
	}
	type hiddenAny struct {
		a any
		B int
	}
	type promotedAny struct {
		withAny // unexported, but a wire field "A" would reach its A
	}
	if err := Gob[promotedAny]().Decode([]byte{1}, &promotedAny{}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("Gob[promotedAny].Decode: %v", err)
	}
	for _, c := range []interface {
		Encode([]byte, *withAny) (int, error)
	}{Gob[withAny]()} {
		if _, err := c.Encode(make([]byte, 100), &withAny{}); !errors.Is(err, ErrNoCodec) ||
			!strings.Contains(err.Error(), "codec.JSON") {
			t.Fatalf("Gob[withAny].Encode: %v", err)
		}
	}
	if err := Gob[nestedAny]().Decode([]byte{1}, &nestedAny{}); !errors.Is(err, ErrNoCodec) ||
		!strings.Contains(err.Error(), ".M[value][0].A") {
		t.Fatalf("Gob[nestedAny].Decode: %v", err)
	}
	if got := roundTrip(t, Gob[hiddenAny](), hiddenAny{a: 1, B: 1}, 256); got.a != nil || got.B != 1 {
		t.Fatalf("Gob[hiddenAny] round trip: %+v", got)
	}
	if err := Check(Gob[nestedAny]()); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("Check(Gob[nestedAny]): %v", err)
	}
	if err := Check(Gob[hiddenAny]()); err != nil {
		t.Fatalf("Check(Gob[hiddenAny]): %v", err)
	}
	if err := Check(mustFor[order](t)); err != nil {
		t.Fatalf("Check(raw): %v", err)
	}
	if err := Check[order](nil); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("Check(nil): %v", err)
	}
	type nilPtr struct{ P *int }
	pp := new(*nilPtr)
	if _, err := Gob[*nilPtr]().Encode(make([]byte, 100), pp); err == nil {
		t.Fatal("gob Encode of a nil pointer succeeded")
	}
}

// TestGobIgnoredInterface feeds the gob codec a stream written for a
// different struct with the same name of fields plus an interface field
// (its concrete type's definition arrives mid-value): gob skips the field,
// and so must the validator.
func TestGobIgnoredInterface(t *testing.T) {
	type target struct {
		A int
		M map[string]int
		Z string
	}
	type extra struct {
		X [2]int8
	}
	type source struct {
		A int
		I any
		J any
		M map[string]int
		Z string
	}
	registerOnce.Do(func() { gob.Register(extra{}) })
	src := source{A: 1, I: extra{X: [2]int8{3, 4}}, J: nil, M: map[string]int{"k": 2}, Z: "end"}
	b := gobEncodeRaw(t, &src)
	var got target
	if err := Gob[target]().Decode(b, &got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.A != 1 || got.M["k"] != 2 || got.Z != "end" {
		t.Fatalf("got %+v", got)
	}
}

var registerOnce sync.Once

// TestGobValidatorAgreesWithGob: the validator accepts what encoding/gob
// writes for interface-free types, and, for streams carrying interface
// values (which such a receiver skips), it gives encoding/gob's own verdict:
// gob cannot skip an interface value whose contents define further types
// (its byte count then does not cover them), and neither can the validator.
func TestGobValidatorAgreesWithGob(t *testing.T) {
	for i, s := range gobSeeds()[:3] {
		if err := checkGob(s); err != nil {
			t.Errorf("seed %d: %v\n% x", i, err, s)
		}
	}
	registerSeedTypes.Do(registerGobSeedTypes)
	type noIface struct {
		Name  string
		Tags  []string
		Items []item
	}
	for i, v := range []withIface{
		{Name: "i", Any: item{K: "in an interface"}, Tags: []string{"t"}, Other: map[string]int{"k": 1}},
		{Any: []any{item{}, nil}, Items: []item{{V: 1}}},
		{Any: []any{nil}, Other: []any{}},
		{Any: []any{map[string]int{"n": 2}}, Items: []item{{V: 1}}},
		{Any: []any{item{}, map[string]int{"n": 2}, nil}, Items: []item{{V: 1}}},
	} {
		b := gobEncodeRaw(t, &v)
		var n noIface
		gobErr := gob.NewDecoder(bytes.NewReader(b)).Decode(&n)
		checkErr := checkGob(b)
		if (gobErr == nil) != (checkErr == nil) {
			t.Errorf("value %d: encoding/gob says %v, the validator says %v", i, gobErr, checkErr)
		}
		if i < 3 && checkErr != nil {
			t.Errorf("value %d: rejected: %v", i, checkErr)
		}
		var n2 noIface
		err := Gob[noIface]().Decode(b, &n2)
		if (err == nil) != (checkErr == nil) || (err == nil && !reflect.DeepEqual(n, n2)) {
			t.Errorf("value %d: codec gives %+v, %v; gob gives %+v", i, n2, err, n)
		}
	}
}

func TestGobHostileCounts(t *testing.T) {
	buf := make([]byte, 256)
	c := Gob[map[int]int]()
	n, err := c.Encode(buf, &map[int]int{7: 8})
	if err != nil {
		t.Fatal(err)
	}
	good := append([]byte(nil), buf[:n]...)
	// The value message is [id][0 (singleton)][count][key][value].
	at := valueOffset(t, good) + 1
	if good[at] != 1 {
		t.Fatalf("map count not found at %d in % x", at, good)
	}
	for _, count := range [][]byte{
		{0x02},                         // more entries than present
		{0xFC, 0x10, 0x00, 0x00, 0x00}, // 2^28 entries
		{0xF8, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, // 2^63-1
		{0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, // negative as an int
	} {
		bad := patchGob(t, good, at, 1, count)
		var m map[int]int
		if err := c.Decode(bad, &m); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("count % x: %v", count, err)
		}
	}
	// A map of empty structs: entries cost nothing to gob once the message
	// ends, so only the validator stands between a count and a long loop.
	type empty struct{}
	ce := Gob[map[int]empty]()
	n, err = ce.Encode(buf, &map[int]empty{1: {}})
	if err != nil {
		t.Fatal(err)
	}
	good = append([]byte(nil), buf[:n]...)
	at = valueOffset(t, good) + 1
	bad := patchGob(t, good, at, 1, []byte{0xFC, 0x10, 0x00, 0x00, 0x00})
	bad = patchGob(t, bad, len(bad)-2, 2, nil) // drop the entry: [key 0x02][struct end 0x00]
	var me map[int]empty
	if err := ce.Decode(bad, &me); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("map of empty structs: %v", err)
	}
	// A slice count far beyond the input.
	cs := Gob[[]int]()
	n, err = cs.Encode(buf, &[]int{5})
	if err != nil {
		t.Fatal(err)
	}
	good = append([]byte(nil), buf[:n]...)
	at = valueOffset(t, good) + 1
	bad = patchGob(t, good, at, 1, []byte{0xFC, 0x10, 0x00, 0x00, 0x00})
	var s []int
	if err := cs.Decode(bad, &s); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("slice count: %v", err)
	}
	// A message length beyond the input.
	bad = append([]byte{0xFC, 0x00, 0x90, 0x00, 0x00}, good...)
	if err := cs.Decode(bad, &s); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("message length: %v", err)
	}
}

// lastMessage returns where the last message of a gob stream starts (its
// length prefix) and where its content starts.
func lastMessage(t *testing.T, b []byte) (prefix, content int) {
	t.Helper()
	rest := b
	for len(rest) > 0 {
		prefix = len(b) - len(rest)
		n, err := readUint(&rest)
		if err != nil || n > uint64(len(rest)) {
			t.Fatalf("bad framing in % x", b)
		}
		content = len(b) - len(rest)
		rest = rest[n:]
	}
	return prefix, content
}

// valueOffset returns the offset of the singleton's zero delta in the last
// message, after the type id.
func valueOffset(t *testing.T, b []byte) int {
	t.Helper()
	_, content := lastMessage(t, b)
	rest := b[content:]
	if _, err := readUint(&rest); err != nil {
		t.Fatal(err)
	}
	at := len(b) - len(rest)
	if b[at] != 0 {
		t.Fatalf("no singleton delta at %d in % x", at, b)
	}
	return at
}

// patchGob replaces b[at:at+n] (inside the last message) with repl and
// fixes that message's length prefix.
func patchGob(t *testing.T, b []byte, at, n int, repl []byte) []byte {
	t.Helper()
	prefix, content := lastMessage(t, b)
	if at < content {
		t.Fatalf("patch at %d is before the last message (%d)", at, content)
	}
	body := append([]byte(nil), b[content:at]...)
	body = append(body, repl...)
	body = append(body, b[at+n:]...)
	out := append([]byte(nil), b[:prefix]...)
	out = appendGobUint(out, uint64(len(body)))
	return append(out, body...)
}

func appendGobUint(b []byte, x uint64) []byte {
	if x <= 0x7f {
		return append(b, byte(x))
	}
	var tmp [8]byte
	n := 8
	for x > 0 {
		n--
		tmp[n] = byte(x)
		x >>= 8
	}
	b = append(b, byte(-(8 - n)))
	return append(b, tmp[n:]...)
}

func gobEncodeRaw(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestErrNoCodec(t *testing.T) {
	type withString struct {
		ID   int
		Name string
	}
	type withSlice struct{ S []int }
	type withMap struct{ M map[string]int }
	type withPtr struct{ P *int }
	type withIface struct{ I any }
	type withChan struct{ C chan int }
	type withFunc struct{ F func() }
	type withUnsafe struct{ U unsafe.Pointer }
	type deep struct{ A [2]struct{ P *int } }
	check := func(name string, err error, wantType, wantPath string) {
		t.Helper()
		if !errors.Is(err, ErrNoCodec) {
			t.Fatalf("%s: err = %v, want ErrNoCodec", name, err)
		}
		msg := err.Error()
		for _, want := range []string{wantType, wantPath, "codec.JSON[" + wantType + "]()", "codec.Gob[" + wantType + "]()", "WithCodec"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("%s: message %q lacks %q", name, msg, want)
			}
		}
	}
	_, err := For[withString]()
	check("string", err, "codec.withString", ".Name is a string")
	_, err = For[withSlice]()
	check("slice", err, "codec.withSlice", ".S is a slice")
	_, err = For[withMap]()
	check("map", err, "codec.withMap", ".M is a map")
	_, err = For[withPtr]()
	check("pointer", err, "codec.withPtr", ".P is a pointer")
	_, err = For[withIface]()
	check("interface", err, "codec.withIface", ".I is an interface")
	_, err = For[withChan]()
	check("chan", err, "codec.withChan", ".C is a channel")
	_, err = For[withFunc]()
	check("func", err, "codec.withFunc", ".F is a func")
	_, err = For[withUnsafe]()
	check("unsafe", err, "codec.withUnsafe", ".U is an unsafe.Pointer")
	_, err = For[deep]()
	check("deep", err, "codec.deep", ".A[0].P is a pointer")
	_, err = For[*int]()
	check("top-level pointer", err, "*int", "it is a pointer")
	_, err = For[any]()
	check("any", err, "interface {}", "it is an interface")
	_, err = For[[]int]()
	check("[]int", err, "[]int", "it is a slice")

	// Raw refuses the same types, at any depth.
	if _, err := Raw[deep](); !errors.Is(err, ErrNoCodec) || !strings.Contains(err.Error(), ".A[0].P") {
		t.Fatalf("Raw[deep]: %v", err)
	}
	if _, err := Raw[[]byte](); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("Raw[[]byte]: %v", err)
	}
	if _, err := RawFingerprint(reflect.TypeFor[withString]()); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("RawFingerprint(withString): %v", err)
	}
	if _, err := RawFingerprint(nil); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("RawFingerprint(nil): %v", err)
	}
}

// Types for the fingerprint table. Each pair differs from fpBase in one way
// (or, for the "same" ones, only in name).
type (
	fpBase struct {
		X int32
		Y float64
		Z [3]uint16
	}
	fpSame struct {
		X int32
		Y float64
		Z [3]uint16
	}
	fpTagged struct {
		X int32   `json:"x"`
		Y float64 `json:"y"`
		Z [3]uint16
	}
	fpRenamed struct {
		X int32
		W float64
		Z [3]uint16
	}
	fpReordered struct {
		Y float64
		X int32
		Z [3]uint16
	}
	fpFieldType struct {
		X uint32
		Y float64
		Z [3]uint16
	}
	fpFieldSize struct {
		X int64
		Y float64
		Z [3]uint16
	}
	fpArrayLen struct {
		X int32
		Y float64
		Z [4]uint16
	}
	fpNested struct {
		X struct{ X int32 }
		Y float64
		Z [3]uint16
	}
	fpNested2 struct {
		X int32
		Y float64
		Z [3]struct{ V uint16 }
	}
	fpExtra struct {
		X int32
		Y float64
		Z [3]uint16
		_ [0]int64
	}
	myInt32 int32
	wrap32  struct{ X int32 }
)

func TestRawFingerprint(t *testing.T) {
	fp := func(typ reflect.Type) uint64 {
		t.Helper()
		h, err := RawFingerprint(typ)
		if err != nil {
			t.Fatalf("RawFingerprint(%s): %v", typ, err)
		}
		return h
	}
	base := reflect.TypeFor[fpBase]()
	for _, tc := range []struct {
		name  string
		a, b  reflect.Type
		equal bool
	}{
		{"same structure, other name", base, reflect.TypeFor[fpSame](), true},
		{"tags are not structure", base, reflect.TypeFor[fpTagged](), true},
		{"anonymous struct", base, reflect.TypeFor[struct {
			X int32
			Y float64
			Z [3]uint16
		}](), true},
		{"named scalar", reflect.TypeFor[int32](), reflect.TypeFor[myInt32](), true},
		{"renamed field", base, reflect.TypeFor[fpRenamed](), false},
		{"reordered fields", base, reflect.TypeFor[fpReordered](), false},
		{"field kind", base, reflect.TypeFor[fpFieldType](), false},
		{"field size", base, reflect.TypeFor[fpFieldSize](), false},
		{"array length", base, reflect.TypeFor[fpArrayLen](), false},
		{"nesting", base, reflect.TypeFor[fpNested](), false},
		{"element nesting", base, reflect.TypeFor[fpNested2](), false},
		{"alignment", base, reflect.TypeFor[fpExtra](), false},
		{"int64 vs uint64", reflect.TypeFor[int64](), reflect.TypeFor[uint64](), false},
		{"int vs int64", reflect.TypeFor[int](), reflect.TypeFor[int64](), false},
		{"int32 vs struct{X int32}", reflect.TypeFor[int32](), reflect.TypeFor[wrap32](), false},
		{"struct{X int32} vs [1]int32", reflect.TypeFor[wrap32](), reflect.TypeFor[[1]int32](), false},
		{"bool vs uint8", reflect.TypeFor[bool](), reflect.TypeFor[uint8](), false},
		{"float32 vs int32", reflect.TypeFor[float32](), reflect.TypeFor[int32](), false},
		{"[2][3]int8 vs [3][2]int8", reflect.TypeFor[[2][3]int8](), reflect.TypeFor[[3][2]int8](), false},
		{"[6]int8 vs [2][3]int8", reflect.TypeFor[[6]int8](), reflect.TypeFor[[2][3]int8](), false},
		{"struct{} vs [0]int", reflect.TypeFor[struct{}](), reflect.TypeFor[[0]int](), false},
		{"[0]int vs [0]*int", reflect.TypeFor[[0]int](), reflect.TypeFor[[0]*int](), false},
	} {
		a, b := fp(tc.a), fp(tc.b)
		if (a == b) != tc.equal {
			t.Errorf("%s: %s=%x %s=%x, want equal=%v", tc.name, tc.a, a, tc.b, b, tc.equal)
		}
	}
}

func TestCodecFingerprintsDiffer(t *testing.T) {
	seen := map[uint64]string{}
	add := func(name string, fp uint64) {
		t.Helper()
		if prev, ok := seen[fp]; ok {
			t.Fatalf("%s and %s share fingerprint %x", name, prev, fp)
		}
		seen[fp] = name
	}
	add("bytes", Bytes().Fingerprint())
	add("string", String().Fingerprint())
	add("raw [5]byte", mustFor[[5]byte](t).Fingerprint())
	add("raw [0]byte", mustFor[[0]byte](t).Fingerprint())
	add("blob", mustFor[blob](t).Fingerprint())
	add("label", mustFor[label](t).Fingerprint())
	add("json []byte", JSON[[]byte]().Fingerprint())
	add("gob []byte", Gob[[]byte]().Fingerprint())
	add("json doc", JSON[doc]().Fingerprint())
	add("gob doc", Gob[doc]().Fingerprint())
	add("binary point", Binary[point]().Fingerprint())
	add("json point", JSON[point]().Fingerprint())
	add("json order", JSON[order]().Fingerprint())
	add("raw order", mustFor[order](t).Fingerprint())
	if a, b := JSON[doc](), JSON[doc](); a.Fingerprint() != b.Fingerprint() {
		t.Fatal("JSON fingerprint not stable")
	}
}

func TestQualifiedTypeString(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[doc](), "github.com/shmchan/shmchan/codec.doc"},
		{reflect.TypeFor[[]byte](), "[]uint8"},
		{reflect.TypeFor[map[string][]*doc](), "map[string][]*github.com/shmchan/shmchan/codec.doc"},
		{reflect.TypeFor[[2]chan<- error](), "[2]chan<- error"},
		{reflect.TypeFor[func(int, ...string) (bool, error)](), "func(int, ...string) (bool, error)"},
		{reflect.TypeFor[struct {
			A int `json:"a"`
			item
			b uint8
		}](), `struct { A int "json:\"a\""; embedded github.com/shmchan/shmchan/codec.item github.com/shmchan/shmchan/codec.item; github.com/shmchan/shmchan/codec.b uint8 }`},
		{reflect.TypeFor[interface{ Len() int }](), "interface { Len() int }"},
	} {
		if got := qualifiedTypeString(tc.typ); got != tc.want {
			t.Errorf("qualifiedTypeString(%s) = %q, want %q", tc.typ, got, tc.want)
		}
	}
}

func TestErrTooLarge(t *testing.T) {
	check := func(name string, enc func(dst []byte) (int, error)) {
		t.Helper()
		big := make([]byte, 1<<16)
		n, err := enc(big)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = enc(make([]byte, n-1))
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s into %d bytes (needs %d): %v", name, n-1, n, err)
		}
		if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(n)) || !strings.Contains(msg, strconv.Itoa(n-1)) {
			t.Fatalf("%s: message %q does not give both sizes", name, msg)
		}
	}
	o := order{ID: 1}
	check("raw", func(d []byte) (int, error) { return mustFor[order](t).Encode(d, &o) })
	b := []byte("0123456789")
	check("bytes", func(d []byte) (int, error) { return Bytes().Encode(d, &b) })
	s := "0123456789"
	check("string", func(d []byte) (int, error) { return String().Encode(d, &s) })
	p := point{Label: "label"}
	check("binary", func(d []byte) (int, error) { return Binary[point]().Encode(d, &p) })
	dv := sampleDoc()
	check("json", func(d []byte) (int, error) { return JSON[doc]().Encode(d, &dv) })
	check("gob", func(d []byte) (int, error) { return Gob[doc]().Encode(d, &dv) })
}

func TestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	t.Run("raw-interface", func(t *testing.T) {
		c := mustFor[raw256](t)
		v, out := new(raw256), new(raw256)
		v.Body[3] = 9
		buf := make([]byte, c.FixedSize())
		if n := testing.AllocsPerRun(1000, func() {
			if _, err := c.Encode(buf, v); err != nil {
				t.Fatal(err)
			}
			if err := c.Decode(buf, out); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("%v allocs per Encode+Decode", n)
		}
	})
	t.Run("raw-direct-stack", func(t *testing.T) {
		rc, _ := AsRaw(mustFor[boolsT](t))
		buf := make([]byte, rc.FixedSize())
		if n := testing.AllocsPerRun(1000, func() {
			var v, out boolsT // on the stack: direct calls do not make them escape
			v.A = true
			if _, err := rc.Encode(buf, &v); err != nil {
				t.Fatal(err)
			}
			if err := rc.Decode(buf, &out); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("%v allocs per Encode+Decode", n)
		}
	})
	t.Run("bytes-decode", func(t *testing.T) {
		c := Bytes()
		src := bytes.Repeat([]byte("x"), 1000)
		dst := make([]byte, 0, 1024)
		if n := testing.AllocsPerRun(1000, func() {
			if err := c.Decode(src, &dst); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("%v allocs per Decode", n)
		}
	})
	t.Run("bytes-encode", func(t *testing.T) {
		c := Bytes()
		v := bytes.Repeat([]byte("x"), 1000)
		dst := make([]byte, 1024)
		if n := testing.AllocsPerRun(1000, func() {
			if _, err := c.Encode(dst, &v); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("%v allocs per Encode", n)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	cj, cg, cb := JSON[doc](), Gob[doc](), Binary[point]()
	v := sampleDoc()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 1<<14)
			for range 20 {
				for _, c := range []Codec[doc]{cj, cg} {
					n, err := c.Encode(buf, &v)
					if err != nil {
						t.Error(err)
						return
					}
					var got doc
					if err := c.Decode(buf[:n], &got); err != nil || got.Name != v.Name {
						t.Error(c.Name(), err)
						return
					}
				}
				p := point{X: int32(g), Label: "g"}
				n, _ := cb.Encode(buf, &p)
				var q point
				if err := cb.Decode(buf[:n], &q); err != nil || q != p {
					t.Error("binary", err, q)
					return
				}
				o, err := For[order]()
				if err != nil || o == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestGobTruncatedAndTrailing: every proper prefix of a valid stream, and
// the stream with a byte appended, is rejected as ErrCorrupt.
func TestGobTruncatedAndTrailing(t *testing.T) {
	c := Gob[doc]()
	v := sampleDoc()
	buf := make([]byte, 8192)
	n, err := c.Encode(buf, &v)
	if err != nil {
		t.Fatal(err)
	}
	good := buf[:n]
	var d doc
	for i := range n {
		if err := c.Decode(good[:i], &d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d/%d bytes: %v", i, n, err)
		}
	}
	if err := c.Decode(append(good[:n:n], 0), &d); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := c.Decode(good, &d); err != nil {
		t.Fatalf("the stream itself: %v", err)
	}
}
