package shmchan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"testing"
	"unsafe"

	"github.com/shmchan/shmchan/layout"
)

func TestRawChanHoldRelease(t *testing.T) {
	for _, multi := range []bool{false, true} {
		name := testName(t)
		opts := []Option{WithCapacity(16)}
		if multi {
			opts = append(opts, WithMultiProducer(), WithProducers(2))
		}
		c, err := Create[rec](name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := openRaw(t, name)
		info := r.Info()
		if !info.Raw || info.ValueSize != int(unsafe.Sizeof(rec{})) || info.Codec != "raw" || info.Capacity != 16 || info.ID == 0 || info.Fingerprint != c.hdr.Fingerprint {
			t.Fatalf("Info = %+v", info)
		}
		for i := uint64(0); i < 10; i++ {
			if err := c.TrySend(mkrec(i)); err != nil {
				t.Fatal(err)
			}
		}
		msgs := make([]RawMsg, 4)
		check := func(n int, from uint64) {
			t.Helper()
			for i := 0; i < n; i++ {
				want := mkrec(from + uint64(i))
				var got rec
				got.Seq = binary.LittleEndian.Uint64(msgs[i].Data)
				got.Sum = binary.LittleEndian.Uint64(msgs[i].Data[8:])
				if got != want || msgs[i].Pos != from+uint64(i) {
					t.Fatalf("multi=%v: held %d = %+v at %d, want %+v at %d", multi, i, got, msgs[i].Pos, want, from+uint64(i))
				}
			}
		}
		ctx := context.Background()
		n, err := r.Hold(ctx, msgs)
		if err != nil || n != 4 {
			t.Fatalf("Hold = %d, %v", n, err)
		}
		check(4, 0)
		// Holding again returns the same values: nothing was consumed.
		if n, err = r.TryHold(msgs); err != nil || n != 4 {
			t.Fatalf("TryHold = %d, %v", n, err)
		}
		check(4, 0)
		if got := r.Len(); got != 10 {
			t.Fatalf("Len after holding = %d, want 10", got)
		}
		if err := r.Release(3); err != nil {
			t.Fatal(err)
		}
		if err := r.Release(2); err == nil {
			t.Fatal("Release of more than is held succeeded")
		}
		if n, err = r.Hold(ctx, msgs); err != nil || n != 4 {
			t.Fatalf("Hold = %d, %v", n, err)
		}
		check(4, 3)
		if err := r.Release(4); err != nil {
			t.Fatal(err)
		}
		if n, err = r.Hold(ctx, msgs); err != nil || n != 3 {
			t.Fatalf("Hold = %d, %v", n, err)
		}
		check(3, 7)
		if err := r.Release(3); err != nil {
			t.Fatal(err)
		}
		if _, err := r.TryHold(msgs); !errors.Is(err, ErrEmpty) {
			t.Fatalf("TryHold on empty = %v", err)
		}
		// Send raw bytes through r (the typed handle gives its sender
		// role up first: SPSC has one) and read them back through r.
		c.Close()
		b := make([]byte, info.ValueSize)
		v := mkrec(99)
		binary.LittleEndian.PutUint64(b, v.Seq)
		binary.LittleEndian.PutUint64(b[8:], v.Sum)
		if err := r.Send(ctx, b[:5]); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Send of a short raw value = %v", err)
		}
		if _, err := r.SendBatch(ctx, [][]byte{b, b[:3]}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("SendBatch with a short raw value = %v", err)
		}
		if err := r.Send(ctx, b); err != nil {
			t.Fatal(err)
		}
		if n, err = r.Hold(ctx, msgs); err != nil || n != 1 || !bytes.Equal(msgs[0].Data, b) || msgs[0].Pos != 10 {
			t.Fatalf("Hold after Send = %d, %v, %x", n, err, msgs[0].Data)
		}
		r.Release(1)
		if err := r.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Hold(ctx, msgs); !errors.Is(err, ErrClosed) {
			t.Fatalf("Hold on a closed, drained channel = %v", err)
		}
	}
}

// openRaw opens name with OpenRaw; it is closed when the test ends.
func openRaw(t *testing.T, name string) *RawChan {
	t.Helper()
	r, err := OpenRaw(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRawChanBytesAndTyped(t *testing.T) {
	name, c := testChan[[]byte](t, WithCapacity(8), WithMaxMessageSize(16))
	r := openRaw(t, name)
	if info := r.Info(); info.Raw || info.ValueSize != 0 || info.MaxMsg != 16 || info.Codec != "bytes" {
		t.Fatalf("Info = %+v", info)
	}
	ctx := context.Background()
	if err := r.Send(ctx, make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Send of 17 bytes = %v", err)
	}
	if n, err := r.SendBatch(ctx, [][]byte{[]byte("a"), {}, []byte("ccc")}); err != nil || n != 3 {
		t.Fatalf("SendBatch = %d, %v", n, err)
	}
	for _, want := range []string{"a", "", "ccc"} {
		got, err := c.Recv(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("Recv = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := OpenRaw(name + "-absent"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenRaw of an absent name = %v", err)
	}
	if _, err := OpenRaw(name, WithCapacity(16)); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("OpenRaw with another capacity = %v", err)
	}
}

func TestRawChanTryHoldMore(t *testing.T) {
	for _, mode := range []string{"spsc", "mpsc", "workqueue"} {
		t.Run(mode, func(t *testing.T) {
			name := testName(t)
			opts := []Option{WithCapacity(16)}
			switch mode {
			case "mpsc":
				opts = append(opts, WithMultiProducer(), WithProducers(2))
			case "workqueue":
				opts = append(opts, WithMultiConsumer(), WithConsumers(2))
			}
			c, r := rawFilled(t, name, 10, nil, opts...)
			msgs := make([]RawMsg, 4)
			check := func(what string, n int, err error, wantN int, from uint64) {
				t.Helper()
				if err != nil || n != wantN {
					t.Fatalf("%s = %d, %v; want %d values", what, n, err, wantN)
				}
				for i := 0; i < n; i++ {
					want := mkrec(from + uint64(i))
					got := rec{Seq: binary.LittleEndian.Uint64(msgs[i].Data), Sum: binary.LittleEndian.Uint64(msgs[i].Data[8:])}
					if got != want || msgs[i].Pos != from+uint64(i) {
						t.Fatalf("%s: value %d = %+v at %d, want %+v at %d", what, i, got, msgs[i].Pos, want, from+uint64(i))
					}
				}
			}
			// With nothing held, TryHoldMore is TryHold.
			n, err := r.TryHoldMore(msgs[:2])
			if mode == "workqueue" {
				// One value at a time: nothing more while one is held.
				check("TryHoldMore", n, err, 1, 0)
				if n, err = r.TryHoldMore(msgs); !errors.Is(err, ErrEmpty) {
					t.Fatalf("TryHoldMore with a value held in a work queue = %d, %v; want ErrEmpty", n, err)
				}
				if err := r.Release(1); err != nil {
					t.Fatal(err)
				}
				n, err = r.TryHoldMore(msgs)
				check("TryHoldMore after Release", n, err, 1, 1)
				return
			}
			check("TryHoldMore", n, err, 2, 0)
			n, err = r.TryHoldMore(msgs[:3])
			check("second TryHoldMore", n, err, 3, 2)
			if got := r.Len(); got != 10 {
				t.Fatalf("Len after holding = %d, want 10", got)
			}
			// Release counts from the oldest held, across both holds.
			if err := r.Release(4); err != nil {
				t.Fatal(err)
			}
			n, err = r.TryHoldMore(msgs)
			check("TryHoldMore after Release", n, err, 4, 5)
			if n, err = r.TryHoldMore(msgs); n != 1 || err != nil {
				t.Fatalf("TryHoldMore of the last value = %d, %v", n, err)
			}
			if n, err = r.TryHoldMore(msgs); !errors.Is(err, ErrEmpty) || n != 0 {
				t.Fatalf("TryHoldMore past the last value = %d, %v; want ErrEmpty", n, err)
			}
			// Hold starts again from the oldest held value.
			n, err = r.Hold(context.Background(), msgs)
			check("Hold", n, err, 4, 4)
			if err := r.Release(5); err == nil {
				t.Fatal("Release of more than Hold returned succeeded (Hold forgets the values held before)")
			}
			n, err = r.TryHoldMore(msgs)
			check("TryHoldMore after Hold", n, err, 2, 8)
			if err := r.Release(6); err != nil {
				t.Fatal(err)
			}
			if got := r.Len(); got != 0 {
				t.Fatalf("Len after releasing everything = %d", got)
			}
			if _, err := r.TryHoldMore(msgs); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryHoldMore on empty = %v", err)
			}
			// A value of the wrong size after held ones: the values before
			// it are handed out, it is reported (and dropped) once it is the
			// oldest, and the values after it flow again.
			if err := c.TrySend(mkrec(10)); err != nil {
				t.Fatal(err)
			}
			if n, err = r.TryHold(msgs[:1]); n != 1 || err != nil {
				t.Fatalf("TryHold = %d, %v", n, err)
			}
			if err := c.TrySend(mkrec(11)); err != nil {
				t.Fatal(err)
			}
			c.Close() // the typed handle gives its sender role up (SPSC has one)
			ctx := context.Background()
			if err := r.c.Send(ctx, []byte("short")); err != nil { // past RawChan's own check
				t.Fatal(err)
			}
			if err := r.Send(ctx, make([]byte, r.Info().ValueSize)); err != nil {
				t.Fatal(err)
			}
			n, err = r.TryHoldMore(msgs)
			check("TryHoldMore before a bad value", n, err, 1, 11)
			if n, err = r.TryHoldMore(msgs); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryHoldMore with a bad value next = %d, %v; want ErrEmpty", n, err)
			}
			if err := r.Release(2); err != nil {
				t.Fatal(err)
			}
			if n, err = r.TryHoldMore(msgs); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("TryHoldMore with the bad value oldest = %d, %v; want ErrCorrupt", n, err)
			}
			if n, err = r.TryHoldMore(msgs); n != 1 || err != nil || msgs[0].Pos != 13 {
				t.Fatalf("TryHoldMore after the bad value = %d, %v (position %d)", n, err, msgs[0].Pos)
			}
		})
	}
}

func TestRawChanTryHoldMoreFunc(t *testing.T) {
	name := testName(t)
	_, r := rawFilled(t, name, 10, nil, WithCapacity(16))
	var got []uint64 // positions f accepted
	take := func(stopAt uint64, stop error) func(uint64, []byte) error {
		return func(pos uint64, data []byte) error {
			if pos == stopAt {
				return stop
			}
			v := rec{Seq: binary.LittleEndian.Uint64(data), Sum: binary.LittleEndian.Uint64(data[8:])}
			if v != mkrec(pos) {
				t.Fatalf("f got %+v at position %d, want %+v", v, pos, mkrec(pos))
			}
			got = append(got, pos)
			return nil
		}
	}
	check := func(what string, n int, err error, wantN int, wantErr error, want ...uint64) {
		t.Helper()
		if n != wantN || !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Fatalf("%s = %d, %v; want %d, %v", what, n, err, wantN, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: f accepted %v, want %v", what, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: f accepted %v, want %v", what, got, want)
			}
		}
		got = got[:0]
	}
	// With nothing held it starts at the oldest value; max bounds it.
	n, err := r.TryHoldMoreFunc(3, take(99, nil))
	check("TryHoldMoreFunc", n, err, 3, nil, 0, 1, 2)
	// An error from f ends the batch before that value, which stays unheld.
	errStop := errors.New("stop here")
	n, err = r.TryHoldMoreFunc(10, take(5, errStop))
	check("TryHoldMoreFunc stopped at 5", n, err, 2, errStop, 3, 4)
	n, err = r.TryHoldMoreFunc(2, take(99, nil))
	check("TryHoldMoreFunc after the stop", n, err, 2, nil, 5, 6)
	// Seven are held: releasing them leaves 7, 8, 9, which Hold returns.
	if err := r.Release(8); err == nil {
		t.Fatal("Release of 8 with 7 held succeeded")
	}
	if err := r.Release(7); err != nil {
		t.Fatal(err)
	}
	msgs := make([]RawMsg, 4)
	if n, err := r.Hold(context.Background(), msgs); err != nil || n != 3 || msgs[0].Pos != 7 {
		t.Fatalf("Hold after Release = %d, %v (first position %d)", n, err, msgs[0].Pos)
	}
	n, err = r.TryHoldMoreFunc(10, take(99, nil))
	check("TryHoldMoreFunc past the last value", n, err, 0, ErrEmpty)
	if n, err = r.TryHoldMoreFunc(0, take(99, nil)); n != 0 || err != nil {
		t.Fatalf("TryHoldMoreFunc of 0 values = %d, %v", n, err)
	}
	if err := r.Release(3); err != nil {
		t.Fatal(err)
	}
	if got := r.Len(); got != 0 {
		t.Fatalf("Len after releasing everything = %d", got)
	}
}

// TestRawChanTryHoldMoreDamaged: a damaged slot after the held values is
// an error, and the values taken before it in that call are not held (the
// caller never got them); once the slot is whole again they come.
func TestRawChanTryHoldMoreDamaged(t *testing.T) {
	name := testName(t)
	var p *peer
	_, r := rawFilled(t, name, 6, func() { p = hostilePeer(t, name) }, WithCapacity(16))
	msgs := make([]RawMsg, 4)
	if n, err := r.TryHoldMore(msgs[:2]); n != 2 || err != nil {
		t.Fatalf("TryHoldMore = %d, %v", n, err)
	}
	saved := *p.word32(p.slot(4) + layout.SlotLen)
	p.set32(p.slot(4)+layout.SlotLen, 1000)
	if n, err := r.TryHoldMore(msgs); !errors.Is(err, ErrCorrupt) || n != 0 {
		t.Fatalf("TryHoldMore over a damaged slot = %d, %v; want ErrCorrupt", n, err)
	}
	if err := r.Release(3); err == nil {
		t.Fatal("Release(3) succeeded: values the failed TryHoldMore took stayed held")
	}
	p.set32(p.slot(4)+layout.SlotLen, saved)
	n, err := r.TryHoldMore(msgs)
	if n != 4 || err != nil || msgs[0].Pos != 2 || msgs[3].Pos != 5 {
		t.Fatalf("TryHoldMore after the repair = %d, %v (positions %d..%d)", n, err, msgs[0].Pos, msgs[3].Pos)
	}
	if err := r.Release(6); err != nil {
		t.Fatal(err)
	}
}

// rawFilled creates channel name with opts, runs between (if any), opens it
// raw and sends n values into it; both handles close when the test ends.
func rawFilled(t *testing.T, name string, n uint64, between func(), opts ...Option) (*Chan[rec], *RawChan) {
	t.Helper()
	c, err := Create[rec](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if between != nil {
		between()
	}
	r, err := OpenRaw(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for i := uint64(0); i < n; i++ {
		if err := c.TrySend(mkrec(i)); err != nil {
			t.Fatal(err)
		}
	}
	return c, r
}
