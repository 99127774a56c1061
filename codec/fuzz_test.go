package codec

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// The decoders get arbitrary bytes, as a hostile peer could write into a
// slot: they must return nil or an error wrapping ErrCorrupt, and never
// panic. The seed corpora live in testdata/fuzz/<FuzzName>/ and run in every
// `go test`; TestWriteFuzzSeeds regenerates the generated part of them.

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode error does not wrap ErrCorrupt: %v", err)
	}
}

// fuzzDecode is a target for c.Decode: it adds seeds, then decodes every
// input into a fresh T, which must give nil or an error wrapping
// ErrCorrupt; more (if not nil) checks further what came of it.
func fuzzDecode[T any](f *testing.F, c Codec[T], seeds [][]byte, more func(t *testing.T, data []byte, v *T, err error)) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		err := c.Decode(data, &v)
		checkDecodeErr(t, err)
		if more != nil {
			more(t, data, &v, err)
		}
	})
}

func FuzzRawDecode(f *testing.F) {
	c, err := Raw[boolsT]()
	if err != nil {
		f.Fatal(err)
	}
	size := c.FixedSize()
	offs := map[int]bool{}
	boolOffsets(reflect.TypeFor[boolsT](), 0, offs)
	fuzzDecode(f, c, rawSeeds(), func(t *testing.T, data []byte, v *boolsT, err error) {
		if (err == nil) != (len(data) == size) {
			t.Fatalf("len %d (size %d): err %v", len(data), size, err)
		}
		if err != nil {
			return
		}
		out := make([]byte, size)
		if _, err := c.Encode(out, v); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			want := data[i]
			if offs[i] {
				want = min(want, 1)
			}
			if out[i] != want {
				t.Fatalf("byte %d: decoded %#x from %#x (bool %v)", i, out[i], data[i], offs[i])
			}
		}
	})
}

func FuzzBytesDecode(f *testing.F) {
	c := Bytes()
	f.Add([]byte(nil))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fresh []byte
		checkDecodeErr(t, c.Decode(data, &fresh))
		if !bytes.Equal(fresh, data) || (len(data) == 0) != (fresh == nil) {
			t.Fatalf("decoded %q from %q", fresh, data)
		}
		reused := make([]byte, 5, 64)
		checkDecodeErr(t, c.Decode(data, &reused))
		if !bytes.Equal(reused, data) || reused == nil {
			t.Fatalf("decoded %q from %q into a buffer", reused, data)
		}
		if len(data) > 0 {
			data[0]++
			if reused[0] == data[0] {
				t.Fatal("decoded slice aliases the input")
			}
		}
	})
}

func FuzzStringDecode(f *testing.F) {
	c := String()
	f.Add([]byte(""))
	f.Add([]byte("héllo"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s string
		checkDecodeErr(t, c.Decode(data, &s))
		if s != string(data) {
			t.Fatalf("decoded %q from %q", s, data)
		}
	})
}

func FuzzBinaryDecode(f *testing.F) {
	c := Binary[point]()
	fuzzDecode(f, c, binarySeeds(), func(t *testing.T, data []byte, p *point, err error) {
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes (the encoding is canonical
		// up to the uvarint, which the appender writes minimally).
		out := make([]byte, len(data)+16)
		n, err := c.Encode(out, p)
		if err != nil {
			t.Fatal(err)
		}
		var q point
		if err := c.Decode(out[:n], &q); err != nil || q != *p {
			t.Fatalf("re-decode: %+v vs %+v, %v", q, *p, err)
		}
	})
}

func FuzzJSONDecode(f *testing.F) {
	fuzzDecode(f, JSON[doc](), jsonSeeds(), nil)
}

func FuzzGobDecode(f *testing.F) {
	c := Gob[doc]()
	cm := Gob[map[string][]item]()
	fuzzDecode(f, c, gobSeeds(), func(t *testing.T, data []byte, d *doc, err error) {
		if err == nil {
			// What decodes must re-encode and decode again.
			out := make([]byte, 4*len(data)+4096)
			n, err := c.Encode(out, d)
			if err != nil {
				// Too large, or a value gob itself cannot encode (say, a
				// time.Time whose zone offset MarshalBinary refuses).
				return
			}
			var d2 doc
			if err := c.Decode(out[:n], &d2); err != nil {
				t.Fatalf("re-decode of our own encoding: %v\n% x", err, out[:n])
			}
		}
		var m map[string][]item
		checkDecodeErr(t, cm.Decode(data, &m))
	})
}

// Seeds: valid encodings, and a few near misses.

func rawSeeds() [][]byte {
	c, _ := Raw[boolsT]()
	size := c.FixedSize()
	return [][]byte{
		make([]byte, size),
		bytes.Repeat([]byte{0xFF}, size),
		bytes.Repeat([]byte{2}, size),
		make([]byte, size-1),
		make([]byte, size+1),
		nil,
	}
}

func binarySeeds() [][]byte {
	c := Binary[point]()
	var out [][]byte
	for _, p := range []point{{}, {X: -1, Y: 2, Label: "label"}, {Label: strings.Repeat("x", 200)}} {
		b := make([]byte, 512)
		n, _ := c.Encode(b, &p)
		out = append(out, b[:n])
	}
	return append(out, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F})
}

func jsonSeeds() [][]byte {
	c := JSON[doc]()
	d := sampleDoc()
	b := make([]byte, 4096)
	n, _ := c.Encode(b, &d)
	return [][]byte{
		b[:n],
		[]byte(`{}`),
		[]byte(`{"Name":"x","Tags":null,"Counts":{"a":1e3},"Items":[{"K":"k","B":[1,2,3,4]}]}`),
		[]byte(`{"Next":{"Next":{"Next":{}}}}`),
		[]byte(`{"Big":123456789012345678901234567890,"When":"2024-01-01T00:00:00Z"}`),
		[]byte(`[`),
	}
}

func gobSeeds() [][]byte {
	var out [][]byte
	add := func(b []byte, n int, err error) {
		if err == nil {
			out = append(out, append([]byte(nil), b[:n]...))
		}
	}
	b := make([]byte, 8192)
	d := sampleDoc()
	n, err := Gob[doc]().Encode(b, &d)
	add(b, n, err)
	n, err = Gob[doc]().Encode(b, &doc{})
	add(b, n, err)
	m := map[string][]item{"a": {{K: "x", V: 1}}, "b": nil}
	n, err = Gob[map[string][]item]().Encode(b, &m)
	add(b, n, err)
	// Streams with interface values (their types defined mid-value), for
	// the validator's skipping path; doc's own fields come after them.
	registerSeedTypes.Do(registerGobSeedTypes)
	for _, v := range []withIface{
		{Name: "i", Any: item{K: "in an interface"}, Tags: []string{"t"}, Other: map[string]int{"k": 1}},
		{Any: []any{item{}, map[string]int{"n": 2}, nil}, Items: []item{{V: 1}}},
	} {
		var w bytes.Buffer
		if gob.NewEncoder(&w).Encode(&v) == nil {
			out = append(out, w.Bytes())
		}
	}
	return out
}

var registerSeedTypes sync.Once

// withIface holds interface values: in a gob stream their types are
// defined mid-value.
type withIface struct {
	Name  string
	Any   any
	Tags  []string
	Other any
	Items []item
}

func registerGobSeedTypes() {
	gob.Register(item{})
	gob.Register(map[string]int{})
	gob.Register([]any{})
}

// TestWriteFuzzSeeds writes the seeds above into testdata/fuzz when
// SHMCHAN_WRITE_SEEDS=1. Inputs the fuzzer found are kept there under their
// own names and are not touched.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("SHMCHAN_WRITE_SEEDS") != "1" {
		t.Skip("set SHMCHAN_WRITE_SEEDS=1 to regenerate the seed corpora")
	}
	bytesSeeds := [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0}, 100)}
	for name, seeds := range map[string][][]byte{
		"FuzzRawDecode":    rawSeeds(),
		"FuzzBytesDecode":  bytesSeeds,
		"FuzzStringDecode": {[]byte(""), []byte("héllo"), {0xff, 0xfe}},
		"FuzzBinaryDecode": binarySeeds(),
		"FuzzJSONDecode":   jsonSeeds(),
		"FuzzGobDecode":    gobSeeds(),
	} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
