package shmchan

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/shmchan/shmchan/internal/region"
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
	// The same bare ring behind two methods that are real calls, then
	// behind the same calls with the fault guard (Arm, and Disarm
	// deferred): the floor of any guarded, non-inlined API. On a trapped
	// mapping (amd64) the endpoints' fast paths run without the guard and
	// come in under it.
	b.Run("bare-calls", func(b *testing.B) {
		q := new(bareRing)
		for i := 0; i < b.N; i++ {
			q.send(rec{Seq: uint64(i), Sum: uint64(i)})
			if v := q.recv(); v.Seq != uint64(i) {
				b.Fatal(v)
			}
		}
	})
	b.Run("bare-guarded", func(b *testing.B) {
		q := new(bareRing)
		for i := 0; i < b.N; i++ {
			if err := q.guardedSend(rec{Seq: uint64(i), Sum: uint64(i)}); err != nil {
				b.Fatal(err)
			}
			if v, err := q.guardedRecv(); err != nil || v.Seq != uint64(i) {
				b.Fatal(v, err)
			}
		}
		region.Restore(region.SavedOff)
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

// bareRing is the "bare" sub-benchmark's ring as methods (one value per
// call, no checks), for the call and guard floors.
type bareRing struct {
	head, tail   atomic.Uint64
	hc, tc, t, h uint64
	data         [1024]rec
}

//go:noinline
func (q *bareRing) send(v rec) { q.put(v) }

//go:noinline
func (q *bareRing) recv() rec { return q.get() }

func (q *bareRing) put(v rec) {
	if q.t-q.hc == uint64(len(q.data)) {
		q.hc = q.head.Load()
	}
	q.data[q.t%uint64(len(q.data))] = v
	q.t++
	q.tail.Store(q.t)
}

func (q *bareRing) get() rec {
	if q.h == q.tc {
		q.tc = q.tail.Load()
	}
	v := q.data[q.h%uint64(len(q.data))]
	q.h++
	q.head.Store(q.h)
	return v
}

//go:noinline
func (q *bareRing) guardedSend(v rec) (err error) {
	region.Arm()
	done := false
	defer region.Disarm(nil, &err, &done)
	q.put(v)
	done = true
	return nil
}

//go:noinline
func (q *bareRing) guardedRecv() (v rec, err error) {
	region.Arm()
	done := false
	defer region.Disarm(nil, &err, &done)
	v = q.get()
	done = true
	return v, nil
}
