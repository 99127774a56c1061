package bench

// The fan-out rows and the many-sender rows: 16-byte values, one per
// call, every side a process of its own, each row beside what a user
// would otherwise use.
//
//   - Work queue, 1 → n receivers (total values/s), against one POSIX
//     message queue read by n processes (the kernel hands each message to
//     one of them). Each receiver checks every value it gets on its own
//     (its sequence number is above the last one it got: a work queue
//     keeps the sender's order for each receiver) and reports how many it
//     got and the sum of mix(seq) over them; the parent checks that the
//     counts add up to what it sent and the sums to the sum over every
//     sequence number sent: every value arrived, and once.
//   - Broadcast (WaitForSlowest), 1 → n subscribers (values/s each one
//     gets), against one pipe per subscriber, the value written to each in
//     turn. Every subscriber checks every value in order, as the other rows
//     do, and must get all of them.
//   - Many senders → one receiver: MPSC with 2 and with 4 sending
//     processes, and one POSIX message queue written by 4 (with the parent,
//     five processes on a machine that may have two cores). A sender's
//     number is tagged into its sequence numbers (tag); the parent checks
//     every value against the next one it expects from that sender.
//
// In the 1 → n rows the parent sends (one value per call, after the same
// warm-up as the other rows, then for the time budget) and ends the run
// (CloseSend, an empty message per reader, end of file). The clock starts
// when the warm-up is over and stops when the last receiver had
// everything: the receivers report that instant on CLOCK_MONOTONIC, which
// every process shares. The rate is the values sent in between over that
// time, so the ring's (or queue's, or pipe's) backlog at the start is not
// counted: a slight underestimate, the same for every transport. In the
// many-sender rows the parent receives and times as the other rows do;
// each sender ends with an end marker (shmchan: a value with markBit set,
// mq: an empty message), and the clock stops at the last marker.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/mq"
)

// fanSize is the value size of every fan-out row.
const fanSize = 16

type fanValue = [fanSize / 8]uint64

// Tagged sequence numbers of the many-sender rows: sender id in bits
// 40..62, its own count below; markBit marks a sender's end marker.
const (
	tagShift = 40
	seqMask  = 1<<tagShift - 1
	markBit  = 1 << 63
)

func tag(id int, seq uint64) uint64 { return uint64(id)<<tagShift | seq }

// mix is the work-queue receivers' checksum of one sequence number (the
// splitmix64 finaliser): a lost value and a duplicate of another cannot
// cancel out in the sum but by a 2^-64 chance.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// monoNow is CLOCK_MONOTONIC in nanoseconds: the same clock in every
// process, unlike the monotonic reading of a time.Time.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return ts.Nano()
}

// fanOutRun returns the run function of a 1 → n row: kind is "wq" (a
// work queue), "mq" (one POSIX mq), "bcast" (a WaitForSlowest broadcast)
// or "pipes" (a pipe per subscriber).
func fanOutRun(kind string, n int) func(context.Context, *env, int) (sample, error) {
	return func(ctx context.Context, e *env, _ int) (sample, error) { return fanOut(ctx, e, kind, n) }
}

func fanOut(ctx context.Context, e *env, kind string, n int) (sample, error) {
	warm := warmCount(fanSize)
	capacity, _ := geometry(fanSize)
	spec := job{Size: fanSize, Budget: e.cfg.Budget}
	files := make([][]*os.File, n)
	var (
		unlink func()                          // the name, once the peers have it open
		begin  func(ctx context.Context) error // just before the first value
		send   func(v *fanValue) error
		end    func() error          // after the last value
		waits  func() (uint64, bool) // wait system calls so far (shmchan)
		done   = func() {}           // the parent's side, after the peers finished
		every  = kind == "bcast" || kind == "pipes"
	)
	waits = func() (uint64, bool) { return 0, false }
	switch kind {
	case "wq", "bcast":
		name := e.newName("shm")
		e.clean.addShm(name)
		defer e.clean.unlinkShm(name)
		opts := []shmchan.Option{shmchan.WithCapacity(capacity), shmchan.WithConsumers(n)}
		if kind == "wq" {
			opts, spec.Role = append(opts, shmchan.WithMultiConsumer()), "wq-recv"
		} else {
			opts, spec.Role = append(opts, shmchan.WithBroadcast(shmchan.WaitForSlowest)), "bc-recv"
		}
		c, err := shmchan.Create[fanValue](name, opts...)
		if err != nil {
			return sample{}, err
		}
		defer c.Close()
		spec.Names = []string{name}
		unlink = func() { e.clean.unlinkShm(name) }
		var tx *shmchan.Sender[fanValue]
		var sctx context.Context
		begin = func(ctx context.Context) (err error) {
			sctx = ctx
			tx, err = c.Sender()
			return err
		}
		send = func(v *fanValue) error { return tx.Send(sctx, *v) }
		end = func() error {
			tx.Release()
			return c.CloseSend()
		}
		waits = func() (uint64, bool) { return waitSyscalls(c.Stats()), true }
	case "mq":
		name, q, err := mqCreate(e, fanSize)
		if err != nil {
			return sample{}, err
		}
		defer e.clean.unlinkMQ(name)
		defer q.Close()
		spec.Role, spec.Names = "mq-recv", []string{name}
		unlink = func() { e.clean.unlinkMQ(name) }
		var sctx context.Context
		begin = func(ctx context.Context) error { sctx = ctx; return nil }
		send = func(v *fanValue) error { return q.Send(sctx, asBytes(v[:]), 0) }
		end = func() error {
			for range n { // an empty message for each reader: the end
				if err := q.Send(sctx, nil, 0); err != nil {
					return err
				}
			}
			return nil
		}
	case "pipes":
		spec.Role = "pipe-recv"
		fds := make([]int, n)
		for i := range fds {
			fds[i] = -1
		}
		closeAll := func() {
			for i, fd := range fds {
				if fd >= 0 {
					unix.Close(fd)
					fds[i] = -1
				}
			}
		}
		defer closeAll()
		for i := range n {
			fd, theirs, err := streamPair("pipe", true) // the parent writes
			if err != nil {
				for _, f := range files[:i] {
					f[0].Close()
				}
				return sample{}, err
			}
			fds[i], files[i] = fd, []*os.File{theirs}
		}
		unlink = func() {}
		begin = func(context.Context) error { return nil }
		send = func(v *fanValue) error {
			b := asBytes(v[:])
			for _, fd := range fds {
				if err := writeAll(fd, b); err != nil {
					return err
				}
			}
			return nil
		}
		end = func() error { closeAll(); return nil } // end of file for every reader
		done = closeAll
	default:
		return sample{}, fmt.Errorf("unknown fan-out kind %q", kind)
	}
	defer done()

	// The peers: n receivers, each ready (joined) before any value is sent.
	var peers []*peer
	finished := 0
	defer func() { // on an early return: kill and reap the rest
		for _, p := range peers[finished:] {
			p.kill()
			p.release()
		}
	}()
	for i := range n {
		p, err := e.startPeer(spec, files[i]...)
		if err != nil {
			for _, f := range files[i+1:] {
				f[0].Close()
			}
			return sample{}, err
		}
		peers = append(peers, p)
	}
	for _, p := range peers {
		if err := p.ready(); err != nil {
			return sample{}, err
		}
	}
	unlink()
	mctx := ctx // ends if any peer fails
	for _, p := range peers {
		c, stop, err := p.start(mctx)
		if err != nil {
			return sample{}, err
		}
		defer stop()
		mctx = c
	}

	if err := begin(mctx); err != nil {
		return sample{}, err
	}
	v := new(fanValue)
	w := v[:]
	fill(w, 0)
	corruptAt := job{Corrupt: e.cfg.corruptAt}
	var t0 int64
	var seq0, sc0 uint64
	sent, serr := sendLoopMarked(job{Warm: warm, Budget: e.cfg.Budget}, func(seq uint64) (int, error) {
		stamp(w, seq)
		corrupt(w, seq, &corruptAt)
		if err := send(v); err != nil {
			return 0, err
		}
		return 1, nil
	}, func(sent uint64) {
		seq0, t0 = sent, monoNow()
		sc0, _ = waits()
	})
	if serr == nil {
		serr = end()
	} else {
		end()
	}

	// Collect every peer's result; a verification failure wins.
	var res []peerResult
	var ferr error
	for _, p := range peers {
		r, err := p.finish(serr)
		finished++
		var ve *verifyError
		if err != nil && (ferr == nil || errors.As(err, &ve)) {
			ferr = err
		}
		res = append(res, r)
	}
	if ferr != nil {
		return sample{}, ferr
	}
	sc1, counted := waits()

	var got, sum, want uint64
	var last int64
	for i, r := range res {
		if every && r.Count != sent {
			return sample{}, verifyf("subscriber %d got %d values, %d were sent", i, r.Count, sent)
		}
		got += r.Count
		sum += r.Sum
		last = max(last, r.EndNS)
	}
	if !every {
		for s := range sent {
			want += mix(s)
		}
		if got != sent || sum != want {
			return sample{}, verifyf("the %d receivers got %d values (checksum %#x), %d were sent (checksum %#x): some lost or repeated", n, got, sum, sent, want)
		}
	}
	m := sent - seq0
	rate, err := perSecond(m, time.Duration(last-t0))
	if err != nil {
		return sample{}, err
	}
	s := uncounted(rate, m)
	if counted {
		s.Syscalls = float64(sc1-sc0) / float64(m)
	}
	return s, nil
}

// fanRecv is a receiving peer of the 1 → n rows.
func fanRecv(ctx context.Context, s job, hs func() error) (peerResult, error) {
	var res peerResult
	var last uint64
	// take checks the next value: in a work queue or mq any value above
	// the last one this receiver got, in a broadcast or pipe exactly the
	// next one.
	every := s.Role == "bc-recv" || s.Role == "pipe-recv"
	take := func(w []uint64) error {
		seq := w[0]
		switch {
		case every:
			seq = res.Count
		case res.Count > 0 && seq <= last:
			return verifyf("value %d after value %d: repeated, or out of its sender's order", seq, last)
		}
		if err := check(w, seq, seq%fullEvery == 0); err != nil {
			return err
		}
		last = seq
		res.Count++
		res.Sum += mix(seq)
		return nil
	}
	var v fanValue
	switch s.Role {
	case "wq-recv", "bc-recv":
		c, err := shmOpen[fanValue](s, 0)
		if err != nil {
			return res, err
		}
		defer c.Close()
		rx, err := c.Receiver() // a broadcast receiver joins here
		if err != nil {
			return res, err
		}
		defer rx.Release()
		if err := hs(); err != nil {
			return res, err
		}
		for {
			v, err = rx.Recv(ctx)
			if errors.Is(err, shmchan.ErrClosed) {
				break
			}
			if err != nil {
				return res, err
			}
			if err := take(v[:]); err != nil {
				return res, err
			}
		}
	case "mq-recv":
		q, err := mq.Open(s.Names[0], os.O_RDONLY, 0, nil)
		if err != nil {
			return res, err
		}
		defer q.Close()
		if err := hs(); err != nil {
			return res, err
		}
		b := asBytes(v[:])
		for {
			n, _, err := q.Receive(ctx, b)
			if err != nil {
				return res, err
			}
			if n == 0 {
				break // the end
			}
			if n != fanSize {
				return res, verifyf("message of %d bytes after value %d, want %d", n, last, fanSize)
			}
			if err := take(v[:]); err != nil {
				return res, err
			}
		}
	case "pipe-recv":
		const fd = 3
		if err := hs(); err != nil {
			return res, err
		}
		b := asBytes(v[:])
		for {
			n, err := readFull(fd, b)
			if err == io.EOF {
				break
			}
			if err == io.ErrUnexpectedEOF {
				return res, verifyf("value %d: stream ended after %d of its %d bytes", res.Count, n, fanSize)
			}
			if err != nil {
				return res, err
			}
			if err := take(v[:]); err != nil {
				return res, err
			}
		}
	default:
		return res, fmt.Errorf("unknown fan-out role %q", s.Role)
	}
	res.EndNS = monoNow()
	return res, nil
}
