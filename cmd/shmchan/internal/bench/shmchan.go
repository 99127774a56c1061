package bench

// The shmchan rows: one value per call (the exclusive Sender/Receiver endpoints), batched
// (SendBatch/RecvBatch), in place (SendFunc/RecvFunc), and round trips.
// Values are raw types, [n/8]uint64 arrays, so they travel as their bytes.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shmchan/shmchan"
)

// sizeOps holds the functions instantiated for one value type.
type sizeOps struct {
	shmThroughput  func(ctx context.Context, e *env, size int, wait shmchan.WaitMode, how string) (sample, error)
	shmSend        func(ctx context.Context, s job, hs func() error) (uint64, error)
	shmSendBatch   func(ctx context.Context, s job, hs func() error) (uint64, error)
	shmSendInPlace func(ctx context.Context, s job, hs func() error) (uint64, error)
	goChan         func(ctx context.Context, e *env, size int) (sample, error) // nil: too large for a Go channel
}

func typedOps[T any]() sizeOps {
	return sizeOps{
		shmThroughput:  shmThroughput[T],
		shmSend:        shmSend[T],
		shmSendBatch:   shmSendBatch[T],
		shmSendInPlace: shmSendInPlace[T],
	}
}

// pair is the 16-byte value of the shmchan and Go channel rows: a struct of
// two words, the shape a Go program's small message has. It is passed to
// Send in two registers. A [2]uint64 is not (arrays go through memory):
// passing one that stamp has just written with two 8-byte stores means one
// 16-byte load of it, which the CPU cannot feed from those two stores, so it
// waits until they have left the store buffer, behind the previous value's
// stores to the slot and tail lines the receiver holds. Measured side by
// side (2 vCPUs, 5 interleaved invocations): the futex row moved 13.7 M
// values/s as [2]uint64 and 21.7 M as pair. The bare ring's copy (memmove,
// two 8-byte loads for 16 bytes) never had the stall.
type pair struct{ A, B uint64 }

// opsFor returns the functions for values of size bytes.
func opsFor(size int) sizeOps {
	var o sizeOps
	switch size {
	case 16:
		o = typedOps[pair]()
		o.goChan = goChanThroughput[pair]
	case 256:
		o = typedOps[[32]uint64]()
		o.goChan = goChanThroughput[[32]uint64]
	case 4 << 10:
		o = typedOps[[512]uint64]()
		o.goChan = goChanThroughput[[512]uint64]
	case 64 << 10:
		o = typedOps[[8192]uint64]()
	case 1 << 20:
		o = typedOps[[131072]uint64]()
	default:
		panic(fmt.Sprintf("shmchan bench: no value type of %d bytes", size))
	}
	return o
}

// shmRun returns the run function of a shmchan throughput row.
func shmRun(wait shmchan.WaitMode, how string) func(context.Context, *env, int) (sample, error) {
	return func(ctx context.Context, e *env, size int) (sample, error) {
		return opsFor(size).shmThroughput(ctx, e, size, wait, how)
	}
}

func waitSyscalls(s shmchan.Stats) uint64 {
	return s.SenderWakes + s.ReceiverWakes + s.RecvSleeps + s.SendSleeps
}

// shmThroughput creates a channel of T, has a peer send into it (one
// value per call, batched or in place: how), receives and checks every
// value, and times the part after the warm-up.
func shmThroughput[T any](ctx context.Context, e *env, size int, wait shmchan.WaitMode, how string) (sample, error) {
	capacity, batch := geometry(size)
	warm := warmCount(size)
	name := e.newName("shm")
	e.clean.addShm(name)
	defer e.clean.unlinkShm(name)
	c, err := shmchan.Create[T](name, shmchan.WithCapacity(capacity), shmchan.WithWait(wait))
	if err != nil {
		return sample{}, err
	}
	defer c.Close()
	role := map[string]string{sectionSingle: "shm-send", sectionBatch: "shm-send-batch", sectionInPlace: "shm-send-inplace"}[how]
	// Once the peer has it open, the name goes.
	p, mctx, stop, err := e.launch(ctx, job{Role: role, Size: size, Names: []string{name}, Warm: warm, Budget: e.cfg.Budget, Batch: batch, Corrupt: e.cfg.corruptAt}, func() { e.clean.unlinkShm(name) })
	if err != nil {
		return sample{}, err
	}

	var (
		seq  uint64
		st0  shmchan.Stats
		m0   uint64
		rerr error
	)
	meter := newMeter(warm, e.cfg.Budget, func() { // the warm-up is over: start counting
		m0 = mallocs()
		st0 = c.Stats()
	})
	switch how {
	case sectionSingle:
		// One goroutine receives: the exclusive endpoint, without the
		// handle's per-call lock, is the API for that.
		rx, err := c.Receiver()
		if err != nil {
			return sample{}, err
		}
		defer rx.Release()
		var v T // outside the loop: a large T lives on the heap, allocated once
		for {
			v, rerr = rx.Recv(mctx)
			if rerr != nil {
				break
			}
			if rerr = check(asWords(&v), seq, seq%fullEvery == 0); rerr != nil {
				break
			}
			seq++
			meter.got(seq)
		}
	case sectionBatch:
		buf := make([]T, batch)
		for rerr == nil {
			k, err := c.RecvBatch(mctx, buf)
			for i := 0; i < k; i++ {
				if verr := check(asWords(&buf[i]), seq, seq%fullEvery == 0); verr != nil {
					err = verr
					break
				}
				seq++
				meter.got(seq)
			}
			rerr = err
		}
	case sectionInPlace:
		var verr error
		read := func(p *T) { verr = check(asWords(p), seq, seq%fullEvery == 0) }
		for {
			if rerr = c.RecvFunc(mctx, read); rerr != nil {
				break
			}
			if verr != nil {
				rerr = verr
				break
			}
			seq++
			meter.got(seq)
		}
	}
	meter.stop()
	st1 := c.Stats()
	m1 := mallocs()
	stop()
	if errors.Is(rerr, shmchan.ErrClosed) {
		rerr = nil // the sender closed the channel: the end
	}
	res, err := p.finish(rerr)
	if err != nil {
		return sample{}, err
	}
	if res.Count != seq {
		return sample{}, verifyf("the peer sent %d values, %d arrived", res.Count, seq)
	}
	n, rate, err := meter.result(seq)
	if err != nil {
		return sample{}, err
	}
	return sample{
		Rate:     rate,
		Syscalls: float64(waitSyscalls(st1)-waitSyscalls(st0)) / float64(n),
		Allocs:   float64(m1-m0) / float64(n),
		N:        n,
	}, nil
}

func shmOpen[T any](s job, i int) (*shmchan.Chan[T], error) {
	var opts []shmchan.Option
	if s.Spin != 0 {
		opts = append(opts, shmchan.WithSpin(s.Spin))
	}
	return shmchan.Open[T](s.Names[i], opts...)
}

// shmSend is the peer of the one-value-per-call row: Send.
func shmSend[T any](ctx context.Context, s job, hs func() error) (uint64, error) {
	c, err := shmOpen[T](s, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	v := new(T)
	w := asWords(v)
	fill(w, 0)
	tx, err := c.Sender() // one goroutine sends: the exclusive endpoint
	if err != nil {
		return 0, err
	}
	n, err := sendLoop(s, func(seq uint64) (int, error) {
		stamp(w, seq)
		corrupt(w, seq, &s)
		if err := tx.Send(ctx, *v); err != nil {
			return 0, err
		}
		return 1, nil
	})
	tx.Release()
	if err != nil {
		return n, err
	}
	return n, c.CloseSend()
}

// shmSendBatch is the peer of the batched row: SendBatch.
func shmSendBatch[T any](ctx context.Context, s job, hs func() error) (uint64, error) {
	c, err := shmOpen[T](s, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	buf := make([]T, max(1, s.Batch))
	for i := range buf {
		fill(asWords(&buf[i]), 0)
	}
	n, err := sendLoop(s, func(seq uint64) (int, error) {
		for i := range buf {
			w := asWords(&buf[i])
			stamp(w, seq+uint64(i))
			corrupt(w, seq+uint64(i), &s)
		}
		return c.SendBatch(ctx, buf)
	})
	if err != nil {
		return n, err
	}
	return n, c.CloseSend()
}

// shmSendInPlace is the peer of the in-place row: SendFunc writes the
// whole value into the slot (from a buffer the producer keeps up to date).
func shmSendInPlace[T any](ctx context.Context, s job, hs func() error) (uint64, error) {
	c, err := shmOpen[T](s, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	src := new(T)
	w := asWords(src)
	fill(w, 0)
	write := func(p *T) { *p = *src }
	n, err := sendLoop(s, func(seq uint64) (int, error) {
		stamp(w, seq)
		corrupt(w, seq, &s)
		if err := c.SendFunc(ctx, write); err != nil {
			return 0, err
		}
		return 1, nil
	})
	if err != nil {
		return n, err
	}
	return n, c.CloseSend()
}

// shmLatency returns the run function of a shmchan round-trip row:
// two channels (ping, pong) in the given wait mode; spin is WithSpin for
// both sides (0: the default, negative: sleep at once).
func shmLatency(wait shmchan.WaitMode, spin time.Duration) func(context.Context, *env, int) (sample, error) {
	return func(ctx context.Context, e *env, size int) (sample, error) {
		opts := []shmchan.Option{shmchan.WithWait(wait), shmchan.WithCapacity(64)}
		if spin != 0 {
			opts = append(opts, shmchan.WithSpin(spin))
		}
		var chans [2]*shmchan.Chan[[2]uint64]
		names := []string{e.newName("ping"), e.newName("pong")}
		for i, n := range names {
			e.clean.addShm(n)
			defer e.clean.unlinkShm(n)
			c, err := shmchan.Create[[2]uint64](n, opts...)
			if err != nil {
				return sample{}, err
			}
			defer c.Close()
			chans[i] = c
		}
		ping, pong := chans[0], chans[1]
		p, mctx, stop, err := e.launch(ctx, job{Role: "shm-echo", Size: 16, Names: names, Spin: spin, Budget: e.cfg.LatencyBudget}, func() {
			for _, n := range names {
				e.clean.unlinkShm(n)
			}
		})
		if err != nil {
			return sample{}, err
		}
		st0 := waitSyscalls(ping.Stats()) + waitSyscalls(pong.Stats())
		m0 := mallocs()
		var rounds uint64
		var v [2]uint64
		tx, err := ping.Sender()
		if err != nil {
			return sample{}, err
		}
		rx, err := pong.Receiver()
		if err != nil {
			tx.Release()
			return sample{}, err
		}
		s, rerr := measureRTT(mctx, e, func(seq uint64) error {
			stamp(v[:], seq)
			if err := tx.Send(mctx, v); err != nil {
				return err
			}
			r, err := rx.Recv(mctx)
			if err != nil {
				return err
			}
			if err := check(r[:], seq, true); err != nil {
				return err
			}
			rounds++
			return nil
		})
		m1 := mallocs()
		st1 := waitSyscalls(ping.Stats()) + waitSyscalls(pong.Stats())
		tx.Release()
		rx.Release()
		if rerr == nil {
			rerr = ping.CloseSend()
		}
		res, err := p.finish(rerr)
		stop()
		if err != nil {
			return sample{}, err
		}
		if res.Count != rounds {
			return sample{}, verifyf("the peer echoed %d values, %d came back", res.Count, rounds)
		}
		s.Syscalls = float64(st1-st0) / float64(rounds)
		s.Allocs = float64(m1-m0) / float64(rounds)
		return s, nil
	}
}

// shmEcho is the peer of the shmchan round trips: it receives on the
// first channel, checks, and sends the value back on the second.
func shmEcho(ctx context.Context, s job, hs func() error) (uint64, error) {
	ping, err := shmOpen[[2]uint64](s, 0)
	if err != nil {
		return 0, err
	}
	defer ping.Close()
	pong, err := shmOpen[[2]uint64](s, 1)
	if err != nil {
		return 0, err
	}
	defer pong.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	rx, err := ping.Receiver()
	if err != nil {
		return 0, err
	}
	defer rx.Release()
	tx, err := pong.Sender()
	if err != nil {
		return 0, err
	}
	defer tx.Release()
	var seq uint64
	for {
		v, err := rx.Recv(ctx)
		if errors.Is(err, shmchan.ErrClosed) {
			return seq, nil
		}
		if err != nil {
			return seq, err
		}
		if err := check(v[:], seq, true); err != nil {
			return seq, err
		}
		if err := tx.Send(ctx, v); err != nil {
			return seq, err
		}
		seq++
	}
}
