package bench

// The many-to-one rows: MPSC with 2 and 4 sending processes (more processes
// than cores on a 2-core machine) beside one POSIX mq written by 4. The
// one-to-many rows (work queue, broadcast) are in fanout.go.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/mq"
)

// manyToOneRun returns the run function of a many-senders row: kind is
// "mpsc" (a shmchan MPSC channel) or "mq" (one POSIX mq); p senders.
func manyToOneRun(kind string, p int) func(context.Context, *env, int) (sample, error) {
	return func(ctx context.Context, e *env, _ int) (sample, error) { return manyToOne(ctx, e, kind, p) }
}

func manyToOne(ctx context.Context, e *env, kind string, np int) (sample, error) {
	warm := warmCount(fanSize)
	capacity, _ := geometry(fanSize)
	spec := job{Size: fanSize, Warm: warm, Budget: e.cfg.Budget, Corrupt: e.cfg.corruptAt}
	var (
		c      *shmchan.Chan[fanValue]
		q      *mq.Queue
		unlink func()
	)
	switch kind {
	case "mpsc":
		name := e.newName("shm")
		e.clean.addShm(name)
		defer e.clean.unlinkShm(name)
		var err error
		c, err = shmchan.Create[fanValue](name, shmchan.WithCapacity(capacity), shmchan.WithMultiProducer(), shmchan.WithProducers(np))
		if err != nil {
			return sample{}, err
		}
		defer c.Close()
		spec.Role, spec.Names = "mpsc-send", []string{name}
		unlink = func() { e.clean.unlinkShm(name) }
	case "mq":
		name, queue, err := mqCreate(e, fanSize)
		if err != nil {
			return sample{}, err
		}
		defer e.clean.unlinkMQ(name)
		defer queue.Close()
		q = queue
		spec.Role, spec.Names = "mqw-send", []string{name}
		unlink = func() { e.clean.unlinkMQ(name) }
	default:
		return sample{}, fmt.Errorf("unknown many-senders kind %q", kind)
	}

	var peers []*peer
	finished := 0
	defer func() {
		for _, p := range peers[finished:] {
			p.kill()
			p.release()
		}
	}()
	for i := range np {
		s := spec
		s.ID = i
		p, err := e.startPeer(s)
		if err != nil {
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
	mctx := ctx
	for _, p := range peers {
		cx, stop, err := p.start(mctx)
		if err != nil {
			return sample{}, err
		}
		defer stop()
		mctx = cx
	}

	var (
		v     fanValue
		st0   shmchan.Stats
		m0    uint64
		next  = make([]uint64, np)
		ended = make([]bool, np)
		ends  int
		total uint64
		rerr  error
	)
	meter := newMeter(uint64(np)*warm, e.cfg.Budget, func() {
		m0 = mallocs()
		if c != nil {
			st0 = c.Stats()
		}
	})
	// take handles one value (or end marker) from the senders.
	take := func(w []uint64) error {
		id := int(w[0] &^ markBit >> tagShift)
		if id >= np {
			return verifyf("a value (%#x) from sender %d, of %d", w[0], id, np)
		}
		if w[0]&markBit != 0 {
			if ended[id] || w[0]&seqMask != next[id] {
				return verifyf("sender %d: end marker after %d of its values, %d arrived (end seen before: %v)", id, w[0]&seqMask, next[id], ended[id])
			}
			ended[id] = true
			ends++
			return nil
		}
		if ended[id] {
			return verifyf("sender %d: a value after its end marker", id)
		}
		if err := check(w, tag(id, next[id]), next[id]%fullEvery == 0); err != nil {
			var ve *verifyError
			errors.As(err, &ve)
			return verifyf("sender %d, value %d: %s", id, next[id], ve.msg)
		}
		next[id]++
		total++
		meter.got(total)
		return nil
	}
	if c != nil {
		rx, err := c.Receiver()
		if err != nil {
			return sample{}, err
		}
		for ends < np && rerr == nil {
			if v, rerr = rx.Recv(mctx); rerr == nil {
				rerr = take(v[:])
			}
		}
		rx.Release()
	} else {
		b := asBytes(v[:])
		for ends < np && rerr == nil {
			var n int
			n, _, rerr = q.Receive(mctx, b)
			switch {
			case rerr != nil:
			case n == 0:
				ends++ // a sender's end; which one, an empty message cannot say
			case n != fanSize:
				rerr = verifyf("a message of %d bytes, want %d", n, fanSize)
			default:
				rerr = take(v[:])
			}
		}
	}
	meter.stop()
	var st1 shmchan.Stats
	if c != nil {
		st1 = c.Stats()
	}
	m1 := mallocs()

	var ferr error
	for i, p := range peers {
		r, err := p.finish(rerr)
		finished++
		var ve *verifyError
		if err == nil && r.Count != next[i] {
			err = verifyf("sender %d sent %d values, %d arrived", i, r.Count, next[i])
		}
		if err != nil && (ferr == nil || errors.As(err, &ve)) {
			ferr = err
		}
	}
	if ferr != nil {
		return sample{}, ferr
	}
	n, rate, err := meter.result(total)
	if err != nil {
		return sample{}, err
	}
	s := uncounted(rate, n)
	if c != nil {
		s.Syscalls = float64(waitSyscalls(st1)-waitSyscalls(st0)) / float64(n)
		s.Allocs = float64(m1-m0) / float64(n)
	}
	return s, nil
}

// manySend is the peer of the many-senders rows: sender s.ID sends its
// tagged values one per call, then its end marker.
func manySend(ctx context.Context, s job, hs func() error) (uint64, error) {
	var v fanValue
	w := v[:]
	fill(w, 0)
	var send func() error
	switch s.Role {
	case "mpsc-send":
		c, err := shmOpen[fanValue](s, 0)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		tx, err := c.Sender()
		if err != nil {
			return 0, err
		}
		defer tx.Release()
		send = func() error { return tx.Send(ctx, v) }
	case "mqw-send":
		q, err := mq.Open(s.Names[0], os.O_WRONLY, 0, nil)
		if err != nil {
			return 0, err
		}
		defer q.Close()
		send = func() error { return q.Send(ctx, asBytes(w), 0) }
	default:
		return 0, fmt.Errorf("unknown many-senders role %q", s.Role)
	}
	if err := hs(); err != nil {
		return 0, err
	}
	n, err := sendLoop(s, func(seq uint64) (int, error) {
		stamp(w, tag(s.ID, seq))
		corrupt(w, seq, &s)
		if err := send(); err != nil {
			return 0, err
		}
		return 1, nil
	})
	if err != nil {
		return n, err
	}
	if s.Role == "mqw-send" {
		w = nil // an empty message
	} else {
		v = fanValue{markBit | tag(s.ID, n), 0}
	}
	return n, send()
}
