package shmchan

import (
	"context"
	"sync/atomic"
	"testing"
)

// BenchmarkPair16 compares, in one run, a Send+Recv pair of a 16-byte raw
// value in one goroutine through the exclusive endpoints with the same pair
// on a bare SPSC ring (the shape of shmchan bench's bare-ring row: cached
// index, one copy in, one release store, one copy out, one release store,
// no checks). Issue 11's target: endpoints at most 1.5x bare. Compare the
// two sub-benchmarks' ns/op side by side (benchstat over -count runs).
func BenchmarkPair16(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		const capacity = 1024
		var head, tail atomic.Uint64
		data := make([]rec, capacity)
		var hc, tc, t, h uint64
		for i := 0; i < b.N; i++ {
			if t-hc == capacity {
				hc = head.Load()
			}
			data[t&(capacity-1)] = rec{Seq: uint64(i), Sum: uint64(i)}
			t++
			tail.Store(t)
			if h == tc {
				tc = tail.Load()
			}
			v := data[h&(capacity-1)]
			h++
			head.Store(h)
			if v.Seq != uint64(i) {
				b.Fatal(v)
			}
		}
	})
	b.Run("endpoints", func(b *testing.B) {
		c, err := Create[rec](testName(b), WithCapacity(1024))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		s, err := c.Sender()
		if err != nil {
			b.Fatal(err)
		}
		defer s.Release()
		r, err := c.Receiver()
		if err != nil {
			b.Fatal(err)
		}
		defer r.Release()
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := s.Send(ctx, rec{Seq: uint64(i), Sum: uint64(i)}); err != nil {
				b.Fatal(err)
			}
			v, err := r.Recv(ctx)
			if err != nil || v.Seq != uint64(i) {
				b.Fatal(v, err)
			}
		}
	})
}
