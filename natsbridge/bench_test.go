package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
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
// rate; the goal is ≥ 0.8; the medians over the rounds):
//
//	go test -run '^$' -bench . -benchtime 200000x
//
// The channel's other side (Out's producer, In's reader of B) is a helper
// process, as it is in use; its CPU time is reported apart
// (producer-cpu-ns/value, reader-cpu-ns/value), the other CPU figures are
// this process's: the bridge or nats.go, and the server.

const benchRounds = 8

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

// fill sends n values of size bytes into rc, then closes it for sending.
func fill(ctx context.Context, rc *shmchan.RawChan, n, size int) chan error {
	done := make(chan error, 1)
	go func() {
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

// drainChan receives from rc until it is closed, as cheaply as a reader
// can: it waits for a value with Hold, takes the ones after it without
// copying them (TryHoldMoreFunc) and releases them.
func drainChan(ctx context.Context, rc *shmchan.RawChan) chan error {
	done := make(chan error, 1)
	go func() {
		first := make([]shmchan.RawMsg, 1)
		skip := func(uint64, []byte) error { return nil }
		for {
			if _, err := rc.Hold(ctx, first); err != nil {
				if errors.Is(err, shmchan.ErrClosed) {
					err = nil
				}
				done <- err
				return
			}
			n, err := rc.TryHoldMoreFunc(1023, skip)
			if err != nil && !errors.Is(err, shmchan.ErrEmpty) {
				done <- err
				return
			}
			if err := rc.Release(1 + n); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

// childCPU is the CPU time of the waited-for child processes so far.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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

// timedCPU runs f, after a GC, with the benchmark timer on and returns how
// long it took and the CPU time the process (client, bridge and embedded
// server together) spent meanwhile.
func timedCPU(b *testing.B, f func()) (time.Duration, time.Duration) {
	runtime.GC()
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

// contender is one of the things a benchmark compares: run does one run
// of n values and returns timedCPU's durations.
type contender struct {
	name string // the metrics' prefix: "bridge", "nats", ...
	run  func() (time.Duration, time.Duration)
}

// compete runs every contender once per round, in another order each
// round, and reports for each its median rate and CPU
// time per value over the rounds; for each other contender, the median
// over the rounds of its time divided by the first contender's (the
// bridge) as ratio+suffix: the bridge's rate relative to that one, paired
// round by round so that a noisy moment weighs on both alike. It returns
// the durations in seconds, by contender and round.
func compete(b *testing.B, n int, cs []contender, suffixes []string) [][]float64 {
	d := make([][]float64, len(cs))
	cpu := make([][]float64, len(cs))
	for round := 0; round < benchRounds; round++ {
		for k := range cs {
			i := (round + k) % len(cs)
			dt, c := cs[i].run()
			d[i] = append(d[i], dt.Seconds())
			cpu[i] = append(cpu[i], float64(c.Nanoseconds())/float64(n))
		}
	}
	for i, c := range cs {
		rates := make([]float64, len(d[i]))
		for r, s := range d[i] {
			rates[r] = float64(n) / s
		}
		b.ReportMetric(median(rates), c.name+"-values/s")
		b.ReportMetric(median(cpu[i]), c.name+"-cpu-ns/value")
		if i > 0 {
			b.ReportMetric(pairedRatio(d[i], d[0]), "ratio"+suffixes[i-1])
		}
	}
	return d
}

// pairedRatio is the median over the rounds of num[r]/den[r].
func pairedRatio(num, den []float64) float64 {
	ratios := make([]float64, len(num))
	for r := range ratios {
		ratios[r] = num[r] / den[r]
	}
	return median(ratios)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkOut: Out publishing values from a channel (while a goroutine
// fills the channel), against nats.go publishing messages of the same
// payload asynchronously with its default window of 4000 (Out's default
// window too): bare, with only a Nats-Msg-Id header as the bridge's (the
// server's de-duplication, which the bridge's delivery guarantee needs),
// and with the bridge's headers. ratio is the bridge's rate relative to
// bare nats.go; ratio-msgid and ratio-headers relative to the others.
func BenchmarkOut(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			payload := make([]byte, sz.size)
			st := newStamp(shmchan.RawInfo{Codec: "raw", Type: "natsbridge.v16", Fingerprint: 1, ID: 2})
			n := max(b.N/benchRounds, 1)
			b.StopTimer()
			b.ResetTimer()
			const (
				bare = iota
				msgid
				headers
			)
			plain := func(kind int) func() (time.Duration, time.Duration) {
				return func() (time.Duration, time.Duration) {
					s, subject := e.stream()
					defer e.drop(s)
					return timedCPU(b, func() {
						for i := 0; i < n; i++ {
							for {
								var err error
								switch kind {
								case bare:
									_, err = e.js.PublishAsync(subject, payload)
								case msgid:
									_, err = e.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: payload, Header: nats.Header{
										jetstream.MsgIDHeader: {st.idPrefix + strconv.Itoa(i)},
									}})
								case headers:
									_, err = e.js.PublishMsgAsync(st.value(subject, uint64(i), payload))
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
			}
			// The producer is a process of its own, as it would be: a
			// goroutine here would share this process's scheduler with
			// the server, and while it sleeps on the ring's futex (the
			// channel full) it keeps one of the two processors from the
			// Go scheduler until sysmon takes it back.
			var producerCPU []float64
			bridge := func() (time.Duration, time.Duration) {
				name := testName(b)
				closeA := sz.mk(b, name)
				defer closeA()
				s, subject := e.stream()
				defer e.drop(s)
				h := spawnIn(b, "fill", name, n, sz.size)
				h.Expect("ready")
				c0 := childCPU()
				d, c := timedCPU(b, func() {
					if _, err := io.WriteString(h.In, "go\n"); err != nil {
						b.Fatal(err)
					}
					if err := Out(ctx, name, e.js, subject); err != nil {
						b.Fatal(err)
					}
				})
				if err := h.Wait(); err != nil {
					b.Fatalf("producer: %v", err)
				}
				producerCPU = append(producerCPU, float64((childCPU()-c0).Nanoseconds())/float64(n))
				return d, c
			}
			d := compete(b, n, []contender{
				{"bridge", bridge},
				{"nats", plain(bare)},
				{"nats+msgid", plain(msgid)},
				{"nats+headers", plain(headers)},
			}, []string{"", "-msgid", "-headers"})
			// The most any bridge keeping the guarantee could reach: nats.go
			// publishing with message IDs, relative to bare nats.go.
			b.ReportMetric(pairedRatio(d[1], d[2]), "msgid-vs-nats")
			b.ReportMetric(median(producerCPU), "producer-cpu-ns/value")
		})
	}
}

// BenchmarkIn: In moving messages from a stream into a channel (which a
// goroutine drains), against a plain consumer loop (Messages, Next, Ack)
// over the same messages, each from a consumer of its own on the same
// stream.
func BenchmarkIn(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			n := max(b.N/benchRounds, 1)
			payload := make([]byte, sz.size)
			b.StopTimer()
			b.ResetTimer()
			// Each round fills a stream of its own (untimed), then runs both.
			var s jetstream.Stream
			var name string
			var consIn, consPlain jetstream.Consumer
			var closeB func()
			ran := 0
			setup := func() {
				if ran%2 == 1 {
					return // the round's stream is there
				}
				if s != nil {
					e.drop(s)
					closeB()
				}
				name = testName(b)
				closeB = sz.mk(b, name)
				rc, err := shmchan.OpenRaw(name)
				if err != nil {
					b.Fatal(err)
				}
				st := newStamp(rc.Info())
				rc.Close()
				var subject string
				s, subject = e.stream()
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
				consIn = mkconsumer(b, s, "in", 30*time.Second)
				consPlain = mkconsumer(b, s, "plain", 30*time.Second)
			}
			defer func() {
				if s != nil {
					e.drop(s)
					closeB()
				}
			}()
			// B's reader is a process of its own (see BenchmarkOut's
			// producer); the run ends when it has every value.
			var consumerCPU []float64
			bridge := func() (time.Duration, time.Duration) {
				setup()
				ran++
				h := spawn(b, "drain", name)
				h.Expect("ready")
				c0 := childCPU()
				d, c := timedCPU(b, func() {
					if err := In(ctx, consIn, name); err != nil {
						b.Fatal(err)
					}
					h.Expect("done")
				})
				if err := h.Wait(); err != nil {
					b.Fatalf("reader of B: %v", err)
				}
				consumerCPU = append(consumerCPU, float64((childCPU()-c0).Nanoseconds())/float64(n))
				return d, c
			}
			plain := func() (time.Duration, time.Duration) {
				setup()
				ran++
				return timedCPU(b, func() {
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
			}
			compete(b, n, []contender{{"bridge", bridge}, {"nats", plain}}, []string{""})
			b.ReportMetric(median(consumerCPU), "reader-cpu-ns/value")
		})
	}
}
