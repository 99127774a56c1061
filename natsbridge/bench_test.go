package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmchan/shmchan"
)

// The benchmarks run the bridge and nats.go alone on the same payloads
// against the same embedded server (loopback TCP, memory storage) in one
// run, taking turns in rounds so that a noisy machine weighs on both
// alike, and report each one's rate and the ratio (bridge rate / nats.go
// rate; the goal is ≥ 0.8):
//
//	go test -run '^$' -bench . -benchtime 200000x

const benchRounds = 4

type v16 [16]byte
type v4k [4096]byte

// benchSizes are the payloads: 16-byte and 4 KiB raw values.
var benchSizes = []struct {
	name string
	size int
	mk   func(b *testing.B, name string) func()
}{
	{"16B", 16, func(b *testing.B, name string) func() { return mkraw[v16](b, name) }},
	{"4KiB", 4096, func(b *testing.B, name string) func() { return mkraw[v4k](b, name) }},
}

func mkraw[T any](b *testing.B, name string) func() {
	c, err := shmchan.Create[T](name, shmchan.WithCapacity(8192))
	if err != nil {
		b.Fatal(err)
	}
	return func() { c.Close(); shmchan.Unlink(name) }
}

// fill sends n values of size bytes into the channel, then closes it.
func fill(ctx context.Context, name string, n, size int) chan error {
	done := make(chan error, 1)
	go func() {
		rc, err := shmchan.OpenRaw(name)
		if err != nil {
			done <- err
			return
		}
		defer rc.Close()
		batch := make([][]byte, 256)
		for i := range batch {
			batch[i] = make([]byte, size)
		}
		for sent := 0; sent < n; {
			k := min(len(batch), n-sent)
			for i := 0; i < k; i++ {
				batch[i][0] = byte(sent + i)
			}
			m, err := rc.SendBatch(ctx, batch[:k])
			if err != nil {
				done <- err
				return
			}
			sent += m
		}
		done <- rc.CloseSend()
	}()
	return done
}

// drainChan receives from the channel until it is closed.
func drainChan(ctx context.Context, name string) chan error {
	done := make(chan error, 1)
	go func() {
		rc, err := shmchan.OpenRaw(name)
		if err != nil {
			done <- err
			return
		}
		defer rc.Close()
		msgs := make([]shmchan.RawMsg, 256)
		for {
			n, err := rc.Hold(ctx, msgs)
			if err != nil {
				if errors.Is(err, shmchan.ErrClosed) {
					err = nil
				}
				done <- err
				return
			}
			if err := rc.Release(n); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

type benchEnv struct {
	b  *testing.B
	js jetstream.JetStream
	n  int
}

func newBenchEnv(b *testing.B) *benchEnv {
	srv := startServer(b)
	_, js := connect(b, srv.url())
	return &benchEnv{b: b, js: js}
}

// stream makes a new memory stream; drop deletes it.
func (e *benchEnv) stream() (jetstream.Stream, string) {
	e.n++
	subject := fmt.Sprintf("bench.%d", e.n)
	return mkstream(e.b, e.js, fmt.Sprintf("BENCH%d", e.n), subject, jetstream.MemoryStorage), subject
}

func (e *benchEnv) drop(s jetstream.Stream) {
	if err := e.js.DeleteStream(context.Background(), s.CachedInfo().Config.Name); err != nil {
		e.b.Fatal(err)
	}
}

// timedCPU runs f with the benchmark timer on and returns how long it took
// and the CPU time the process (client, bridge and embedded server
// together) spent meanwhile.
func timedCPU(b *testing.B, f func()) (time.Duration, time.Duration) {
	c0 := cpuTime()
	b.StartTimer()
	start := time.Now()
	f()
	d := time.Since(start)
	b.StopTimer()
	return d, cpuTime() - c0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// BenchmarkOut: Out publishing values from a channel, against nats.go
// publishing messages of the same payload asynchronously (its default
// window of 4000), bare and with the bridge's headers and message IDs.
func BenchmarkOut(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			payload := make([]byte, sz.size)
			st := newStamp(shmchan.RawInfo{Codec: "raw", Type: "natsbridge.v16", Fingerprint: 1, ID: 2})
			n := max(b.N/benchRounds, 1)
			var bridge, bare, hdr, bridgeCPU, bareCPU, hdrCPU time.Duration
			plain := func(headers bool) (time.Duration, time.Duration) {
				s, subject := e.stream()
				defer e.drop(s)
				return timedCPU(b, func() {
					for i := 0; i < n; i++ {
						for {
							var err error
							if headers {
								_, err = e.js.PublishMsgAsync(st.value(subject, uint64(i), payload))
							} else {
								_, err = e.js.PublishAsync(subject, payload)
							}
							if err == nil {
								break
							}
							if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
								b.Fatal(err)
							}
							<-e.js.PublishAsyncComplete() // what a publisher does when it stalls
						}
					}
					select {
					case <-e.js.PublishAsyncComplete():
					case <-time.After(time.Minute):
						b.Fatal("acks did not arrive")
					}
				})
			}
			b.StopTimer()
			b.ResetTimer()
			runBridge := func() (time.Duration, time.Duration) {
				name := testName(b)
				closeA := sz.mk(b, name)
				defer closeA()
				s, subject := e.stream()
				defer e.drop(s)
				return timedCPU(b, func() {
					filled := fill(ctx, name, n, sz.size)
					if err := Out(ctx, name, e.js, subject); err != nil {
						b.Fatal(err)
					}
					if err := <-filled; err != nil {
						b.Fatal(err)
					}
				})
			}
			for round := 0; round < benchRounds; round++ {
				// Each round in another order, each run after a GC.
				for k := 0; k < 3; k++ {
					runtime.GC()
					var d, c time.Duration
					switch (round + k) % 3 {
					case 0:
						d, c = runBridge()
						bridge, bridgeCPU = bridge+d, bridgeCPU+c
					case 1:
						d, c = plain(false)
						bare, bareCPU = bare+d, bareCPU+c
					case 2:
						d, c = plain(true)
						hdr, hdrCPU = hdr+d, hdrCPU+c
					}
				}
			}
			total := n * benchRounds
			b.ReportMetric(rate(total, bridge), "bridge-values/s")
			b.ReportMetric(rate(total, bare), "nats-values/s")
			b.ReportMetric(rate(total, hdr), "nats+headers-values/s")
			b.ReportMetric(bare.Seconds()/bridge.Seconds(), "ratio")
			b.ReportMetric(hdr.Seconds()/bridge.Seconds(), "ratio-headers")
			b.ReportMetric(float64(bridgeCPU.Nanoseconds())/float64(total), "bridge-cpu-ns/value")
			b.ReportMetric(float64(bareCPU.Nanoseconds())/float64(total), "nats-cpu-ns/value")
			b.ReportMetric(float64(hdrCPU.Nanoseconds())/float64(total), "nats+headers-cpu-ns/value")
		})
	}
}

// BenchmarkIn: In moving messages from a stream into a channel (which a
// goroutine drains), against a plain consumer loop (Messages, Next, Ack)
// over the same messages.
func BenchmarkIn(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			n := max(b.N/benchRounds, 1)
			payload := make([]byte, sz.size)
			var bridge, plain, bridgeCPU, plainCPU time.Duration
			b.StopTimer()
			b.ResetTimer()
			for round := 0; round < benchRounds; round++ {
				name := testName(b)
				closeB := sz.mk(b, name)
				rc, err := shmchan.OpenRaw(name)
				if err != nil {
					b.Fatal(err)
				}
				st := newStamp(rc.Info())
				rc.Close()
				s, subject := e.stream()
				for i := 0; i <= n; i++ {
					var m *nats.Msg
					if i < n {
						m = st.value(subject, uint64(i), payload)
					} else {
						m = st.marker(subject, uint64(n))
					}
					if _, err := e.js.PublishMsgAsync(m); err != nil {
						b.Fatal(err)
					}
					if i%1024 == 1023 {
						<-e.js.PublishAsyncComplete()
					}
				}
				<-e.js.PublishAsyncComplete()
				if si, err := s.Info(ctx); err != nil || si.State.Msgs != uint64(n+1) {
					b.Fatalf("stream filled with %v messages (%v), want %d", si.State.Msgs, err, n+1)
				}
				consIn := mkconsumer(b, s, "in", 30*time.Second)
				consPlain := mkconsumer(b, s, "plain", 30*time.Second)
				runtime.GC()
				d, c := timedCPU(b, func() {
					drained := drainChan(ctx, name)
					if err := In(ctx, consIn, name); err != nil {
						b.Fatal(err)
					}
					if err := <-drained; err != nil {
						b.Fatal(err)
					}
				})
				bridge, bridgeCPU = bridge+d, bridgeCPU+c
				runtime.GC()
				d, c = timedCPU(b, func() {
					it, err := consPlain.Messages()
					if err != nil {
						b.Fatal(err)
					}
					defer it.Stop()
					for i := 0; i <= n; i++ {
						m, err := it.Next()
						if err != nil {
							b.Fatal(err)
						}
						if err := m.Ack(); err != nil {
							b.Fatal(err)
						}
					}
				})
				plain, plainCPU = plain+d, plainCPU+c
				e.drop(s)
				closeB()
			}
			total := n * benchRounds
			b.ReportMetric(rate(total, bridge), "bridge-values/s")
			b.ReportMetric(rate(total, plain), "nats-values/s")
			b.ReportMetric(plain.Seconds()/bridge.Seconds(), "ratio")
			b.ReportMetric(float64(bridgeCPU.Nanoseconds())/float64(total), "bridge-cpu-ns/value")
			b.ReportMetric(float64(plainCPU.Nanoseconds())/float64(total), "nats-cpu-ns/value")
		})
	}
}
