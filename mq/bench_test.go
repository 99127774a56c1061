package mq_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmchan/shmchan/mq"
)

// BenchmarkSendReceive is one TrySend and one TryReceive of a message of the
// given size, in one process: two system calls and two copies.
func BenchmarkSendReceive(b *testing.B) {
	for _, size := range []int{16, 256, 4096, 8192} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			_, q := create(b, &mq.Attr{MaxMsg: 1, MsgSize: int64(size)})
			msg := make([]byte, size)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := q.TrySend(msg, 1); err != nil {
					b.Fatal(err)
				}
				if _, _, err := q.TryReceive(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPingPongGoroutines is a round trip between two goroutines of one
// process over two queues, each side blocked in Receive (parked in the
// poller) until the other sends.
func BenchmarkPingPongGoroutines(b *testing.B) {
	_, ping := create(b, &mq.Attr{MaxMsg: 1, MsgSize: 16})
	_, pong := create(b, &mq.Attr{MaxMsg: 1, MsgSize: 16})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 16)
		for {
			n, _, err := ping.Receive(ctx, buf)
			if err != nil {
				return
			}
			if err := pong.Send(ctx, buf[:n], 0); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 16)
	buf := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		if err := ping.Send(ctx, msg, 0); err != nil {
			b.Fatal(err)
		}
		if _, _, err := pong.Receive(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
	cancel()
	<-done
}

// BenchmarkPingPongProcess is a round trip to a helper process that echoes
// every message back on a second queue; both sides block in Receive.
func BenchmarkPingPongProcess(b *testing.B) {
	pingName, ping := create(b, &mq.Attr{MaxMsg: 1, MsgSize: 16})
	pongName, pong := create(b, &mq.Attr{MaxMsg: 1, MsgSize: 16})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := helper{mode: "echo", env: map[string]string{
		"SHMCHAN_MQ_NAME":  pingName,
		"SHMCHAN_MQ_NAME2": pongName,
	}}.command(ctx, b)
	cmd.Stdout = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 16)
	buf := make([]byte, 16)
	// One round trip before timing: the helper is up.
	if err := ping.Send(ctx, msg, 0); err != nil {
		b.Fatal(err)
	}
	if _, _, err := pong.Receive(ctx, buf); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ping.Send(ctx, msg, 0); err != nil {
			b.Fatal(err)
		}
		if _, _, err := pong.Receive(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := ping.Send(ctx, []byte("quit"), 0); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}
