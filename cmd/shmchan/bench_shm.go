package main

// The shmchan rows: one value per call (the exclusive Sender/Receiver endpoints), batched
// (SendBatch/RecvBatch), in place (SendFunc/RecvFunc), and round trips.
// Values are raw types, [n/8]uint64 arrays, so they travel as their bytes.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan"
)

// benchSizeOps holds the functions instantiated for one value type.
type benchSizeOps struct {
	shmThroughput  func(ctx context.Context, e *benchEnv, size int, wait shmchan.WaitMode, how string) (benchSample, error)
	shmSend        func(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error)
	shmSendBatch   func(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error)
	shmSendInPlace func(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error)
	goChan         func(ctx context.Context, e *benchEnv, size int) (benchSample, error) // nil: too large for a Go channel
}

func benchOpsFor[T any]() benchSizeOps {
	return benchSizeOps{
		shmThroughput:  benchShmThroughput[T],
		shmSend:        benchShmSend[T],
		shmSendBatch:   benchShmSendBatch[T],
		shmSendInPlace: benchShmSendInPlace[T],
	}
}

// benchOps returns the functions for values of size bytes.
func benchOps(size int) benchSizeOps {
	var o benchSizeOps
	switch size {
	case 16:
		o = benchOpsFor[[2]uint64]()
		o.goChan = benchGoChanThroughput[[2]uint64]
	case 256:
		o = benchOpsFor[[32]uint64]()
		o.goChan = benchGoChanThroughput[[32]uint64]
	case 4 << 10:
		o = benchOpsFor[[512]uint64]()
		o.goChan = benchGoChanThroughput[[512]uint64]
	case 64 << 10:
		o = benchOpsFor[[8192]uint64]()
	case 1 << 20:
		o = benchOpsFor[[131072]uint64]()
	default:
		panic(fmt.Sprintf("shmchan bench: no value type of %d bytes", size))
	}
	return o
}

// benchShmRun returns the run function of a shmchan throughput row.
func benchShmRun(wait shmchan.WaitMode, how string) func(context.Context, *benchEnv, int) (benchSample, error) {
	return func(ctx context.Context, e *benchEnv, size int) (benchSample, error) {
		return benchOps(size).shmThroughput(ctx, e, size, wait, how)
	}
}

func benchWaitSyscalls(s shmchan.Stats) uint64 {
	return s.SenderWakes + s.ReceiverWakes + s.RecvSleeps + s.SendSleeps
}

// benchShmThroughput creates a channel of T, has a peer send into it (one
// value per call, batched or in place: how), receives and checks every
// value, and times the part after the warm-up.
func benchShmThroughput[T any](ctx context.Context, e *benchEnv, size int, wait shmchan.WaitMode, how string) (benchSample, error) {
	capacity, batch := benchGeometry(size)
	warm := benchWarm(size)
	name := e.newName("shm")
	e.clean.addShm(name)
	defer e.clean.unlinkShm(name)
	c, err := shmchan.Create[T](name, shmchan.WithCapacity(capacity), shmchan.WithWait(wait))
	if err != nil {
		return benchSample{}, err
	}
	defer c.Close()
	role := map[string]string{benchSingle: "shm-send", benchBatch: "shm-send-batch", benchInPlace: "shm-send-inplace"}[how]
	p, err := e.startPeer(benchPeerSpec{Role: role, Size: size, Names: []string{name}, Warm: warm, Budget: e.cfg.budget, Batch: batch, Corrupt: e.corruptAt})
	if err != nil {
		return benchSample{}, err
	}
	if err := p.ready(); err != nil {
		return benchSample{}, err
	}
	e.clean.unlinkShm(name) // the peer has it open
	mctx, stop, err := p.start(ctx)
	if err != nil {
		return benchSample{}, err
	}

	var (
		seq  uint64
		st0  shmchan.Stats
		m0   uint64
		rerr error
	)
	meter := newBenchMeter(warm, e.cfg.budget, func() { // the warm-up is over: start counting
		m0 = benchMallocs()
		st0 = c.Stats()
	})
	switch how {
	case benchSingle:
		// One goroutine receives: the exclusive endpoint, without the
		// handle's per-call lock, is the API for that.
		rx, err := c.Receiver()
		if err != nil {
			return benchSample{}, err
		}
		defer rx.Release()
		var v T // outside the loop: a large T lives on the heap, allocated once
		for {
			v, rerr = rx.Recv(mctx)
			if rerr != nil {
				break
			}
			if rerr = benchCheck(benchWords(&v), seq, seq%benchFullEvery == 0); rerr != nil {
				break
			}
			seq++
			meter.got(seq)
		}
	case benchBatch:
		buf := make([]T, batch)
		for rerr == nil {
			k, err := c.RecvBatch(mctx, buf)
			for i := 0; i < k; i++ {
				if verr := benchCheck(benchWords(&buf[i]), seq, seq%benchFullEvery == 0); verr != nil {
					err = verr
					break
				}
				seq++
				meter.got(seq)
			}
			rerr = err
		}
	case benchInPlace:
		var verr error
		read := func(p *T) { verr = benchCheck(benchWords(p), seq, seq%benchFullEvery == 0) }
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
	m1 := benchMallocs()
	stop()
	if errors.Is(rerr, shmchan.ErrClosed) {
		rerr = nil // the sender closed the channel: the end
	}
	res, err := p.finish(rerr)
	if err != nil {
		return benchSample{}, err
	}
	if res.Count != seq {
		return benchSample{}, benchVerifyf("the peer sent %d values, %d arrived", res.Count, seq)
	}
	n, rate, err := meter.result(seq)
	if err != nil {
		return benchSample{}, err
	}
	return benchSample{
		Rate:     rate,
		Syscalls: float64(benchWaitSyscalls(st1)-benchWaitSyscalls(st0)) / float64(n),
		Allocs:   float64(m1-m0) / float64(n),
		N:        n,
	}, nil
}

// benchSendLoop drives a sender: send(seq) sends value seq (or a batch
// starting there) and returns how many values it sent. It sends the
// warm-up (at most half the time budget on it), then goes on for the time
// budget. The clock is watched by timers that raise flags, so the loop
// pays one load per value for it, and a slow transport cannot overshoot.
func benchSendLoop(s benchPeerSpec, send func(seq uint64) (int, error)) (uint64, error) {
	var warmOver, over atomic.Bool
	t := time.AfterFunc(s.Budget/2, func() { warmOver.Store(true) })
	defer t.Stop()
	var seq uint64
	for seq < s.Warm && !warmOver.Load() {
		k, err := send(seq)
		seq += uint64(k)
		if err != nil {
			return seq, err
		}
	}
	t2 := time.AfterFunc(s.Budget, func() { over.Store(true) })
	defer t2.Stop()
	for !over.Load() {
		k, err := send(seq)
		seq += uint64(k)
		if err != nil {
			return seq, err
		}
	}
	return seq, nil
}

// benchMeter times the receiving side of a throughput run: the clock starts
// when the warm-up is over (warm values arrived, or half the time budget
// passed since the start) and stops at the end.
type benchMeter struct {
	warm     uint64
	warmOver atomic.Bool
	timer    *time.Timer
	on       bool
	base     uint64
	t0, t1   time.Time
	onStart  func() // called just before the clock starts
}

func newBenchMeter(warm uint64, budget time.Duration, onStart func()) *benchMeter {
	m := &benchMeter{warm: warm, onStart: onStart}
	m.timer = time.AfterFunc(budget/2, func() { m.warmOver.Store(true) })
	return m
}

// got is called after each value with the number received so far.
func (m *benchMeter) got(n uint64) {
	if !m.on && (n >= m.warm || m.warmOver.Load()) {
		m.start(n)
	}
}

func (m *benchMeter) start(n uint64) {
	if m.onStart != nil {
		m.onStart()
	}
	m.on, m.base, m.t0 = true, n, time.Now()
}

// stop stops the clock after n values.
func (m *benchMeter) stop() { m.t1 = time.Now(); m.timer.Stop() }

// result returns how many values were measured, and the rate.
func (m *benchMeter) result(n uint64) (uint64, float64, error) {
	if !m.on {
		return 0, 0, fmt.Errorf("only %d values arrived, fewer than the warm-up (%d)", n, m.warm)
	}
	rate, err := benchRate(n-m.base, m.t1.Sub(m.t0))
	return n - m.base, rate, err
}

func benchShmOpen[T any](s benchPeerSpec, i int) (*shmchan.Chan[T], error) {
	var opts []shmchan.Option
	if s.Spin != 0 {
		opts = append(opts, shmchan.WithSpin(s.Spin))
	}
	return shmchan.Open[T](s.Names[i], opts...)
}

// benchShmSend is the peer of the one-value-per-call row: Send.
func benchShmSend[T any](ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	c, err := benchShmOpen[T](s, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	v := new(T)
	w := benchWords(v)
	benchFill(w, 0)
	tx, err := c.Sender() // one goroutine sends: the exclusive endpoint
	if err != nil {
		return 0, err
	}
	n, err := benchSendLoop(s, func(seq uint64) (int, error) {
		benchStamp(w, seq)
		benchCorrupt(w, seq, &s)
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

// benchShmSendBatch is the peer of the batched row: SendBatch.
func benchShmSendBatch[T any](ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	c, err := benchShmOpen[T](s, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	buf := make([]T, max(1, s.Batch))
	for i := range buf {
		benchFill(benchWords(&buf[i]), 0)
	}
	n, err := benchSendLoop(s, func(seq uint64) (int, error) {
		for i := range buf {
			w := benchWords(&buf[i])
			benchStamp(w, seq+uint64(i))
			benchCorrupt(w, seq+uint64(i), &s)
		}
		return c.SendBatch(ctx, buf)
	})
	if err != nil {
		return n, err
	}
	return n, c.CloseSend()
}

// benchShmSendInPlace is the peer of the in-place row: SendFunc writes the
// whole value into the slot (from a buffer the producer keeps up to date).
func benchShmSendInPlace[T any](ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	c, err := benchShmOpen[T](s, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	src := new(T)
	w := benchWords(src)
	benchFill(w, 0)
	fill := func(p *T) { *p = *src }
	n, err := benchSendLoop(s, func(seq uint64) (int, error) {
		benchStamp(w, seq)
		benchCorrupt(w, seq, &s)
		if err := c.SendFunc(ctx, fill); err != nil {
			return 0, err
		}
		return 1, nil
	})
	if err != nil {
		return n, err
	}
	return n, c.CloseSend()
}

// benchShmLatency returns the run function of a shmchan round-trip row:
// two channels (ping, pong) in the given wait mode; spin is WithSpin for
// both sides (0: the default, negative: sleep at once).
func benchShmLatency(wait shmchan.WaitMode, spin time.Duration) func(context.Context, *benchEnv, int) (benchSample, error) {
	return func(ctx context.Context, e *benchEnv, size int) (benchSample, error) {
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
				return benchSample{}, err
			}
			defer c.Close()
			chans[i] = c
		}
		ping, pong := chans[0], chans[1]
		p, err := e.startPeer(benchPeerSpec{Role: "shm-echo", Size: 16, Names: names, Spin: spin, Budget: e.cfg.latBudget})
		if err != nil {
			return benchSample{}, err
		}
		if err := p.ready(); err != nil {
			return benchSample{}, err
		}
		for _, n := range names {
			e.clean.unlinkShm(n)
		}
		mctx, stop, err := p.start(ctx)
		if err != nil {
			return benchSample{}, err
		}
		st0 := benchWaitSyscalls(ping.Stats()) + benchWaitSyscalls(pong.Stats())
		m0 := benchMallocs()
		var rounds uint64
		var v [2]uint64
		tx, err := ping.Sender()
		if err != nil {
			return benchSample{}, err
		}
		rx, err := pong.Receiver()
		if err != nil {
			tx.Release()
			return benchSample{}, err
		}
		s, rerr := benchMeasureRTT(mctx, e, func(seq uint64) error {
			benchStamp(v[:], seq)
			if err := tx.Send(mctx, v); err != nil {
				return err
			}
			r, err := rx.Recv(mctx)
			if err != nil {
				return err
			}
			if err := benchCheck(r[:], seq, true); err != nil {
				return err
			}
			rounds++
			return nil
		})
		m1 := benchMallocs()
		st1 := benchWaitSyscalls(ping.Stats()) + benchWaitSyscalls(pong.Stats())
		tx.Release()
		rx.Release()
		if rerr == nil {
			rerr = ping.CloseSend()
		}
		res, err := p.finish(rerr)
		stop()
		if err != nil {
			return benchSample{}, err
		}
		if res.Count != rounds {
			return benchSample{}, benchVerifyf("the peer echoed %d values, %d came back", res.Count, rounds)
		}
		s.Syscalls = float64(st1-st0) / float64(rounds)
		s.Allocs = float64(m1-m0) / float64(rounds)
		return s, nil
	}
}

// benchShmEcho is the peer of the shmchan round trips: it receives on the
// first channel, checks, and sends the value back on the second.
func benchShmEcho(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	ping, err := benchShmOpen[[2]uint64](s, 0)
	if err != nil {
		return 0, err
	}
	defer ping.Close()
	pong, err := benchShmOpen[[2]uint64](s, 1)
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
		if err := benchCheck(v[:], seq, true); err != nil {
			return seq, err
		}
		if err := tx.Send(ctx, v); err != nil {
			return seq, err
		}
		seq++
	}
}
