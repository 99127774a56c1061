package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzRead: no input makes the reader panic, hang or allocate without
// bound; an error is always a *DamageError (the input is in memory, so no
// I/O error can happen); and a file that reads cleanly is exactly what the
// writer makes of the same header and records.
func FuzzRead(f *testing.F) {
	for _, raw := range []bool{true, false} {
		b, offs := build(f, raw, 3)
		f.Add(b)
		f.Add(b[:offs[2]])
		f.Add(b[:offs[2]+5])
		d := bytes.Clone(b)
		d[offs[1]+2] ^= 0x40
		f.Add(d)
	}
	e, _ := build(f, false, 0)
	f.Add(e)
	f.Add([]byte(Magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			var de *DamageError
			if !errors.As(err, &de) {
				t.Fatalf("NewReader: %T %v", err, err)
			}
			return
		}
		var out bytes.Buffer
		w, err := NewWriter(&out, r.Header())
		if err != nil {
			t.Fatalf("a header that reads does not write: %v", err)
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var de *DamageError
				if !errors.As(err, &de) || de.Record != rec.Index && rec.Index != 0 {
					t.Fatalf("Next: %T %v", err, err)
				}
				return
			}
			if len(rec.Data) > r.Header().MaxMsg {
				t.Fatalf("record of %d bytes over max %d", len(rec.Data), r.Header().MaxMsg)
			}
			if err := w.Write(rec.Time, rec.Data); err != nil {
				t.Fatalf("a record that reads does not write: %v", err)
			}
		}
		if err := w.Close(r.Ended); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("rewritten file differs:\n%x\n%x", out.Bytes(), data)
		}
	})
}
