package shmchan

import (
	"context"
	"testing"
)

// BenchmarkSendRecvSameGoroutine measures the per-value cost of the API
// with no cross-core traffic: one goroutine sends then receives.
func BenchmarkSendRecvSameGoroutine(b *testing.B) {
	c, err := Create[rec](testName(b), WithCapacity(1024))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Send(ctx, rec{Seq: uint64(i)})
		c.Recv(ctx)
	}
}

// BenchmarkInProcess16 streams 16-byte values between two goroutines of one
// process through the shared mapping (the cross-core cost without a second
// process).
func BenchmarkInProcess16(b *testing.B) {
	c, err := Create[rec](testName(b), WithCapacity(4096))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			if v, err := c.Recv(ctx); err != nil || v.Seq != uint64(i) {
				b.Error(v, err)
				return
			}
		}
	}()
	b.SetBytes(16)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Send(ctx, rec{Seq: uint64(i)})
	}
	<-done
}

// BenchmarkGoChan16 is the reference: a buffered Go channel between two
// goroutines.
func BenchmarkGoChan16(b *testing.B) {
	ch := make(chan rec, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			<-ch
		}
	}()
	b.SetBytes(16)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch <- rec{Seq: uint64(i)}
	}
	<-done
}

// BenchmarkPaths16 times, in one goroutine, a 16-byte raw value's trip
// through each way of moving values: Chan.Send+Chan.Recv (the shared
// handle, per-call lock), SendBatch+RecvBatch of 64, SendFunc+RecvFunc (in
// place). ns/op is per value. It uses only API that the first version of
// the package already had, so a copy dropped into an old tree gives a test
// binary to run side by side with a new one (how the before/after in the
// README's Performance section was taken).
func BenchmarkPaths16(b *testing.B) {
	open := func(b *testing.B) *Chan[rec] {
		c, err := Create[rec](testName(b), WithCapacity(1024))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()
	b.Run("chan", func(b *testing.B) {
		c := open(b)
		for i := 0; i < b.N; i++ {
			if err := c.Send(ctx, rec{Seq: uint64(i)}); err != nil {
				b.Fatal(err)
			}
			if v, err := c.Recv(ctx); err != nil || v.Seq != uint64(i) {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("batch64", func(b *testing.B) {
		c := open(b)
		in, out := make([]rec, 64), make([]rec, 64)
		for i := 0; i < b.N; i += 64 {
			for j := range in {
				in[j].Seq = uint64(i + j)
			}
			if _, err := c.SendBatch(ctx, in); err != nil {
				b.Fatal(err)
			}
			n, err := c.RecvBatch(ctx, out)
			if err != nil || n != 64 || out[63].Seq != uint64(i+63) {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("inplace", func(b *testing.B) {
		c := open(b)
		var got uint64
		read := func(p *rec) { got = p.Seq }
		for i := 0; i < b.N; i++ {
			seq := uint64(i)
			if err := c.SendFunc(ctx, func(p *rec) { p.Seq, p.Sum = seq, seq }); err != nil {
				b.Fatal(err)
			}
			if err := c.RecvFunc(ctx, read); err != nil || got != seq {
				b.Fatal(got, err)
			}
		}
	})
}
