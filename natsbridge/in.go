package natsbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmchan/shmchan"
)

// In consumes cons and sends every message into the channel (taking a
// sender role); a message is acked only after its value is committed. At
// least once: a duplicate is possible only for a value committed just
// before an In crash (or whose acknowledgement a lost connection dropped).
// On the close marker it calls CloseSend on the channel and returns nil,
// once every message before the marker has been committed and acknowledged;
// it makes sure its acknowledgements reached the server before it returns
// nil.
//
// The channel must exist (fs.ErrNotExist otherwise). A message of another
// type ends In with an error matching shmchan.ErrTypeMismatch and stays
// unacknowledged; a malformed one is terminated and reported through
// WithErrorHandler (ErrMalformed). Fetch errors and lost connections are
// retried for as long as ctx lasts.
func In(ctx context.Context, cons jetstream.Consumer, channel string, opts ...Option) error {
	rc, err := shmchan.OpenRaw(channel)
	if err != nil {
		return fmt.Errorf("natsbridge: in: %w", err)
	}
	defer rc.Close()
	r := &inner{rc: rc, cons: cons, o: parse(opts)}
	if err := r.run(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("natsbridge: in → %q: %w", channel, err)
	}
	return nil
}

type inner struct {
	rc   *shmchan.RawChan
	cons jetstream.Consumer
	o    *options
	chk  *checker
	info shmchan.RawInfo

	vals  [][]byte        // values taken and not yet committed
	msgs  []jetstream.Msg // their messages
	nbyte int

	failedAcks []jetstream.Msg // committed values whose Ack did not go out
	marker     jetstream.Msg   // the close marker, once seen
	markerSeq  uint64          // its stream sequence
	after      []jetstream.Msg // messages after the marker: not committed
	ackWait    time.Duration
	maxExpires time.Duration // the consumer's MaxRequestExpires, if any
	pause      backoff
}

func (r *inner) run(ctx context.Context) error {
	r.info = r.rc.Info()
	r.chk = newChecker(r.info)
	r.ackWait = 30 * time.Second
	maxBatch := r.o.batch
	if ci := r.cons.CachedInfo(); ci != nil {
		if ci.Config.AckWait > 0 {
			r.ackWait = ci.Config.AckWait
		}
		if mb := ci.Config.MaxRequestBatch; mb > 0 {
			maxBatch = min(maxBatch, mb)
		}
		if mp := ci.Config.MaxAckPending; mp > 0 {
			maxBatch = min(maxBatch, mp) // a fetch no larger than what may be delivered at once
		}
		r.maxExpires = ci.Config.MaxRequestExpires
	}
	for {
		if err := ctx.Err(); err != nil {
			r.settle()
			return err
		}
		r.retryAcks()
		if r.marker != nil {
			done, err := r.tryClose(ctx)
			if done || err != nil {
				return err
			}
		}
		// One fetch at a time: the server hands the messages of several
		// outstanding requests out in turn, and each fetch has its own
		// subscription, so two would interleave. Fetch no more than the
		// channel has room for, so that the send does not wait (and
		// delivered messages do not sit unacknowledged).
		room := r.info.Capacity - r.rc.Len()
		if room <= 0 {
			if err := sleep(ctx, time.Millisecond); err != nil {
				r.settle()
				return err
			}
			continue
		}
		// A fetch ends when it is full, or when the server says its wait is
		// over (after every message it delivered), or when nats.go misses
		// the server's heartbeats (a lost server). A fetch that ends on the
		// client's side alone drops what arrives for it later, which
		// JetStream redelivers after AckWait: so the wait is long (30 s,
		// nats.go's default; the consumer's MaxRequestExpires if lower), and
		// In cancels a fetch it leaves, so the server stops handing it
		// messages that another fetch would get.
		fctx, cancel := r.fetchContext(ctx)
		fopts := []jetstream.FetchOpt{jetstream.FetchContext(fctx)}
		if hb := r.heartbeat(fctx); hb > 0 {
			fopts = append(fopts, jetstream.FetchHeartbeat(hb))
		}
		mb, err := r.cons.Fetch(min(maxBatch, room), fopts...)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				continue
			}
			if fatalFetch(err) || errors.Is(err, nats.ErrConnectionClosed) {
				r.settle()
				return err
			}
			r.o.retry(fmt.Errorf("natsbridge: in: fetch: %w", err))
			if err := r.pause.wait(ctx); err != nil {
				continue
			}
			continue
		}
		err = r.drain(ctx, mb)
		cancel()
		if err == errClosedDone {
			return nil
		}
		if err != nil {
			r.settle()
			return err
		}
		if err := mb.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			if fatalFetch(err) {
				r.settle()
				return err
			}
			r.o.retry(fmt.Errorf("natsbridge: in: fetch: %w", err))
			r.pause.wait(ctx)
		}
	}
}

// fetchContext is the context of one fetch: cancelled when In is done
// with it, with no deadline (the server's default wait) unless the
// consumer limits how long a fetch may wait.
func (r *inner) fetchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.maxExpires > 0 {
		return context.WithTimeout(ctx, r.maxExpires)
	}
	return context.WithCancel(ctx)
}

// heartbeat is the idle heartbeat to ask of a fetch with context ctx: it
// must be under half the fetch's wait, which a deadline shortens (nats.go
// waits 90% of the time left); none for a very short fetch.
func (r *inner) heartbeat(ctx context.Context) time.Duration {
	hb := r.o.heartbeat
	if dl, ok := ctx.Deadline(); ok {
		hb = min(hb, time.Until(dl)/4)
	}
	if hb < 10*time.Millisecond {
		return 0
	}
	return hb
}

// fatalFetch reports whether a fetch error means the consumer is gone.
func fatalFetch(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound)
}

// errClosedDone: drain closed the channel on the marker; In is done.
var errClosedDone = errors.New("closed")

// drain takes the messages of one fetch as they arrive, committing what
// has arrived each time the batch's channel runs dry. Once the close
// marker came, it tries to close after each commit and every quarter
// second (errClosedDone once closed); a fetch it leaves then holds only
// messages after the marker, which JetStream redelivers to the next reader.
func (r *inner) drain(ctx context.Context, mb jetstream.MessageBatch) error {
	ch := mb.Messages()
	var tick <-chan time.Time
	for {
		if r.marker != nil {
			done, err := r.tryClose(ctx)
			if err != nil {
				return err
			}
			if done {
				return errClosedDone
			}
			if tick == nil {
				t := time.NewTicker(250 * time.Millisecond)
				defer t.Stop()
				tick = t.C
			}
		}
		var m jetstream.Msg
		var ok bool
		select {
		case m, ok = <-ch:
		case <-tick:
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		err := r.take(m)
	more:
		for err == nil {
			select {
			case m, ok = <-ch:
				if !ok {
					break more
				}
				err = r.take(m)
			default:
				break more
			}
		}
		if cerr := r.commit(ctx); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		if !ok {
			if r.marker != nil {
				if done, err := r.tryClose(ctx); done || err != nil {
					return cmp.Or(err, errClosedDone)
				}
			}
			return nil
		}
		r.pause.reset()
	}
}

// take classifies one message: values join the batch, malformed messages
// are terminated, the marker is kept. An error (a type mismatch) stops In;
// the values before it are committed first.
func (r *inner) take(m jetstream.Msg) error {
	if r.marker != nil {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("natsbridge: in: %w", err)
		}
		switch s := md.Sequence.Stream; {
		case s == r.markerSeq:
			r.marker = m // delivered again: keep the newest delivery
			return nil
		case s > r.markerSeq:
			r.after = append(r.after, m)
			return nil
		}
	}
	k, err := r.chk.check(m.Headers(), m.Data())
	if err != nil {
		err = fmt.Errorf("%s: %w", describe(m), err)
		if errors.Is(err, shmchan.ErrTypeMismatch) {
			return err
		}
		if terr := m.TermWithReason(err.Error()); terr != nil {
			err = fmt.Errorf("%w (and Term failed: %v)", err, terr)
		}
		if c := r.o.counters; c != nil {
			c.Malformed.Add(1)
		}
		r.o.onError(err)
		return nil
	}
	if k == kindMarker {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("natsbridge: in: %w", err)
		}
		r.marker, r.markerSeq = m, md.Sequence.Stream
		return nil
	}
	r.vals = append(r.vals, m.Data())
	r.msgs = append(r.msgs, m)
	r.nbyte += len(m.Data())
	return nil
}

// describe names a message in errors: its stream sequence if it has one.
func describe(m jetstream.Msg) string {
	if md, err := m.Metadata(); err == nil {
		return fmt.Sprintf("message %d of stream %s", md.Sequence.Stream, md.Stream)
	}
	return "message on " + m.Subject()
}

// commit sends the batch into the channel, then acknowledges it.
func (r *inner) commit(ctx context.Context) error {
	if len(r.vals) == 0 {
		return nil
	}
	// Should the send wait for room (another sender filled the channel),
	// keep the batch's messages from being redelivered meanwhile.
	ka := keepAlive(r.msgs, r.ackWait)
	n, err := r.rc.SendBatch(ctx, r.vals)
	ka.stop()
	r.ack(r.msgs[:n])
	if n > 0 {
		bytes := r.nbyte
		if n < len(r.vals) {
			bytes = 0
			for _, v := range r.vals[:n] {
				bytes += len(v)
			}
		}
		r.o.count(n, bytes)
	}
	clear(r.vals)
	clear(r.msgs)
	r.vals, r.msgs, r.nbyte = r.vals[:0], r.msgs[:0], 0
	if err != nil {
		return err
	}
	return nil
}

func (r *inner) ack(ms []jetstream.Msg) {
	for _, m := range ms {
		if err := m.Ack(); err != nil {
			r.failedAcks = append(r.failedAcks, m)
		}
	}
}

// retryAcks sends again the acknowledgements that did not go out (the
// connection was down); what the server no longer wants is dropped.
func (r *inner) retryAcks() {
	if len(r.failedAcks) == 0 {
		return
	}
	keep := r.failedAcks[:0]
	for _, m := range r.failedAcks {
		err := m.Ack()
		if err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) && !errors.Is(err, jetstream.ErrMsgNoReply) {
			keep = append(keep, m)
		}
	}
	clear(r.failedAcks[len(keep):])
	r.failedAcks = keep
}

// tryClose closes the channel if every message before the marker has been
// acknowledged, as the consumer's acknowledgement floor says.
func (r *inner) tryClose(ctx context.Context) (bool, error) {
	if len(r.failedAcks) > 0 {
		return false, nil
	}
	// The acknowledgements just sent may still be on their way through
	// the server: look again a few times before fetching (redeliveries of
	// a crashed In's messages are the other reason to wait).
	for try := 0; ; try++ {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ci, err := r.cons.Info(ictx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			r.o.retry(fmt.Errorf("natsbridge: in: consumer info: %w", err))
			return false, nil
		}
		if ci.AckFloor.Stream+1 >= r.markerSeq {
			break
		}
		if try == 3 {
			return false, nil
		}
		if err := sleep(ctx, time.Duration(1<<(2*try))*time.Millisecond); err != nil {
			return false, err
		}
	}
	if err := r.rc.CloseSend(); err != nil {
		return true, err
	}
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.marker.DoubleAck(actx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			break
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		r.o.retry(fmt.Errorf("natsbridge: in: acknowledging the close marker: %w", err))
		if err := r.pause.wait(ctx); err != nil {
			return true, err
		}
	}
	for _, m := range r.after {
		m.Nak()
	}
	r.after = nil
	return true, nil
}

// settle is what In does on its way out with an error: acknowledgements
// still owed go out once more, messages after a marker go back, and a
// round trip to the server makes sure what was sent has arrived.
func (r *inner) settle() {
	r.retryAcks()
	for _, m := range r.after {
		m.Nak()
	}
	r.after = nil
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.cons.Info(ctx)
}

// keeper marks messages in progress while a send waits.
type keeper struct {
	mu      sync.Mutex
	stopped bool
	t       *time.Timer
}

func keepAlive(ms []jetstream.Msg, ackWait time.Duration) *keeper {
	k := &keeper{}
	every := max(ackWait/3, 10*time.Millisecond)
	k.t = time.AfterFunc(every, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.stopped {
			return
		}
		for _, m := range ms {
			m.InProgress()
		}
		k.t.Reset(every)
	})
	return k
}

func (k *keeper) stop() {
	k.mu.Lock()
	k.stopped = true
	k.t.Stop()
	k.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
