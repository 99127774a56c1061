package shmchan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"testing"
	"unsafe"
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
