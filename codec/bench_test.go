package codec

import (
	"bytes"
	"testing"
)

func benchRaw[T any](b *testing.B, v T) {
	c, err := Raw[T]()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, c.FixedSize())
	b.Run("interface", func(b *testing.B) {
		in, out := &v, new(T)
		b.SetBytes(int64(c.FixedSize()))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encode(buf, in); err != nil {
				b.Fatal(err)
			}
			if err := c.Decode(buf, out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		rc, _ := AsRaw(c)
		b.SetBytes(int64(c.FixedSize()))
		b.ReportAllocs()
		for b.Loop() {
			var out T
			if _, err := rc.Encode(buf, &v); err != nil {
				b.Fatal(err)
			}
			if err := rc.Decode(buf, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRaw16 and BenchmarkRaw256: Encode then Decode of a 16- and a
// 256-byte pointer-free struct.
func BenchmarkRaw16(b *testing.B)  { benchRaw(b, raw16{A: 1, B: 2}) }
func BenchmarkRaw256(b *testing.B) { benchRaw(b, raw256{Body: [28]uint64{5: 5}}) }

// BenchmarkRawBools: a struct whose bool bytes Decode normalises.
func BenchmarkRawBools(b *testing.B) { benchRaw(b, boolsT{A: true}) }

// BenchmarkBytes: Encode then Decode of a 256-byte slice into a reused
// buffer.
func BenchmarkBytes(b *testing.B) {
	c := Bytes()
	v := bytes.Repeat([]byte("x"), 256)
	buf := make([]byte, 512)
	var out []byte
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := c.Encode(buf, &v)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Decode(buf[:n], &out); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEncoded times Encode then Decode of v, into a buffer of size bytes.
func benchEncoded[T any](b *testing.B, c Codec[T], v T, size int) {
	buf := make([]byte, size)
	n, err := c.Encode(buf, &v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		n, err := c.Encode(buf, &v)
		if err != nil {
			b.Fatal(err)
		}
		var out T
		if err := c.Decode(buf[:n], &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSON and BenchmarkGob: Encode then Decode of sampleDoc (maps,
// slices, nested structs, a time and a big.Int).
func BenchmarkJSON(b *testing.B) { benchEncoded(b, JSON[doc](), sampleDoc(), 8192) }
func BenchmarkGob(b *testing.B)  { benchEncoded(b, Gob[doc](), sampleDoc(), 8192) }

// BenchmarkBinary: Encode then Decode of a small BinaryAppender type.
func BenchmarkBinary(b *testing.B) {
	benchEncoded(b, Binary[point](), point{X: 1, Y: 2, Label: "a label"}, 64)
}

// BenchmarkGobValidate: the validator alone, on sampleDoc's encoding.
func BenchmarkGobValidate(b *testing.B) {
	v := sampleDoc()
	buf := make([]byte, 8192)
	n, err := Gob[doc]().Encode(buf, &v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkGob(buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
}
