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
