// Package flow is the two sides of the two-process demo: Produce sends a
// stream of Samples, Consume receives them, checks that none is missing,
// repeated, reordered or damaged, and prints the rate it sees.
// examples/producer and examples/consumer run one side each, in two
// terminals; examples/demo runs both as two processes with one command.
//
// Read this file to see a whole cross-process flow: OpenOrCreate on a
// shared name (either side may start first), Send at full speed or paced,
// CloseSend at the end, and a receiving loop over All that ends once the
// channel is closed and drained.
package flow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan"
)

// DefaultName is the channel both sides use unless told otherwise.
const DefaultName = "shmchan-demo"

// Capacity is the number of slots. Both sides pass the same value: Open
// with a capacity the region does not have is ErrIncompatible.
const Capacity = 4096

// Sample is the value that travels. It has no pointers, strings or slices,
// so it is copied as its raw 64 bytes: no encoding, no allocation. The
// channel records a fingerprint of this layout, and a program with another
// type cannot open it (ErrTypeMismatch).
type Sample struct {
	Seq     uint64   // 0, 1, 2, ... in the order sent
	SentAt  int64    // Unix nanoseconds when the producer sent it
	Payload [48]byte // stand-in for real data; derived from Seq, so checkable
}

// fill writes the payload that belongs to seq.
func (s *Sample) fill() {
	binary.LittleEndian.PutUint64(s.Payload[0:], s.Seq*0x9E3779B97F4A7C15)
	binary.LittleEndian.PutUint64(s.Payload[40:], ^s.Seq)
}

// intact reports whether the payload is the one fill wrote.
func (s *Sample) intact() bool {
	return binary.LittleEndian.Uint64(s.Payload[0:]) == s.Seq*0x9E3779B97F4A7C15 &&
		binary.LittleEndian.Uint64(s.Payload[40:]) == ^s.Seq
}

// open attaches to the channel, creating it if this side is first.
func open(name string) (*shmchan.Chan[Sample], error) {
	return shmchan.OpenOrCreate[Sample](name, shmchan.WithCapacity(Capacity))
}

// Produce sends n samples (n == 0: until ctx ends) at rate values per
// second (0: as fast as the consumer takes them), then closes the channel
// for sending, which tells the consumer that the stream is complete. When
// ctx ends first (Ctrl-C) it closes the channel too: the consumer gets
// everything sent so far and stops.
func Produce(ctx context.Context, name string, n uint64, rate float64, log io.Writer) error {
	c, err := open(name)
	if err != nil {
		return err
	}
	defer c.Close() // detach; the region stays for the consumer
	if c.Stats().Closed {
		return fmt.Errorf("channel %q was closed by an earlier producer and not yet drained by a consumer: "+
			"run the consumer, or remove it with 'go run ./cmd/shmchan rm -f %s'", name, name)
	}

	fmt.Fprintf(log, "producer: sending %s to %q (capacity %d)\n", count(n), name, c.Cap())
	start := time.Now()
	var sent uint64
	var s Sample
	for ; n == 0 || sent < n; sent++ {
		if rate > 0 {
			// Paced: sleep until this value is due (in steps of at
			// least a millisecond, so that sleeping stays cheap).
			due := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		s.Seq = sent
		if sent%1024 == 0 {
			s.SentAt = time.Now().UnixNano() // a clock read per value would cost more than the send
		}
		s.fill()
		// Send blocks while the channel is full, and returns ctx.Err()
		// at once when ctx ends (Ctrl-C).
		if err := c.Send(ctx, s); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
	}
	if err := c.CloseSend(); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(log, "producer: sent %d values in %v (%s values/s), closed the channel\n",
		sent, el.Round(time.Millisecond), perSecond(sent, el))
	return nil
}

// Report is what Consume saw.
type Report struct {
	Received uint64
	Gaps     uint64 // values missing between two received ones
	Bad      uint64 // values out of order, repeated, or with a damaged payload
}

// ErrDiscontinuity is returned by Consume when the stream was not exactly
// 0, 1, 2, ... with intact payloads.
var ErrDiscontinuity = errors.New("the stream had gaps or damaged values")

// Consume receives until the producer closes the channel and it is
// drained, or ctx ends. Once a second it prints how many values arrived and
// the rate, and, from the timestamps, how old values were when received.
// It checks that sequence numbers go 0, 1, 2, ... without a gap and that
// every payload is intact. When done it unlinks the channel: the consumer
// is the last one out (the producer has closed and detached, or will
// detach without needing the name again).
func Consume(ctx context.Context, name string, log io.Writer) (Report, error) {
	c, err := open(name)
	if err != nil {
		return Report{}, err
	}
	defer shmchan.Unlink(name)
	defer c.Close()
	fmt.Fprintf(log, "consumer: receiving from %q (capacity %d)\n", name, c.Cap())

	// The loop publishes its count; a ticker goroutine prints it, so the
	// loop itself never looks at the clock for progress.
	var got, ageSum, ageN atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastAt := uint64(0), time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				n := got.Load()
				line := fmt.Sprintf("consumer: %12d values  %9s values/s", n, perSecond(n-last, now.Sub(lastAt)))
				if k := ageN.Swap(0); k > 0 {
					line += fmt.Sprintf("  age %v", time.Duration(ageSum.Swap(0)/k).Round(time.Microsecond))
				}
				fmt.Fprintln(log, line)
				last, lastAt = n, now
			}
		}
	}()

	var r Report
	var start time.Time
	next := uint64(0)
	for s, err := range c.All(ctx) { // ends when closed and drained
		if err != nil {
			close(stop)
			<-done
			if ctx.Err() != nil {
				fmt.Fprintf(log, "consumer: interrupted after %d values\n", r.Received)
				return r, nil
			}
			return r, err
		}
		if r.Received == 0 {
			start = time.Now()
		}
		r.Received++
		switch {
		case !s.intact():
			r.Bad++
		case s.Seq == next:
		case s.Seq > next:
			r.Gaps += s.Seq - next
		default:
			r.Bad++
		}
		next = s.Seq + 1
		if s.Seq%1024 == 0 && s.SentAt > 0 {
			ageSum.Add(uint64(max(0, time.Now().UnixNano()-s.SentAt)))
			ageN.Add(1)
		}
		got.Store(r.Received)
	}
	close(stop)
	<-done
	el := time.Since(start)
	fmt.Fprintf(log, "consumer: channel closed; received %d values in %v (%s values/s), %d missing, %d out of order or damaged\n",
		r.Received, el.Round(time.Millisecond), perSecond(r.Received, el), r.Gaps, r.Bad)
	if r.Gaps > 0 || r.Bad > 0 {
		return r, ErrDiscontinuity
	}
	return r, nil
}

func count(n uint64) string {
	if n == 0 {
		return "values until interrupted"
	}
	return fmt.Sprintf("%d values", n)
}

// perSecond formats n per d as 950, 12.3k or 4.56M.
func perSecond(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	v := float64(n) / d.Seconds()
	switch {
	case v < 1e3:
		return fmt.Sprintf("%.0f", v)
	case v < 1e6:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.2fM", v/1e6)
}
