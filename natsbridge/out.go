package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmchan/shmchan"
)

// Out takes the receiver role on the channel and publishes every value to
// subject, until ctx is done or the channel is closed and drained (then it
// publishes a close marker and returns nil). A value leaves the ring only
// after JetStream acknowledged it; each message's Nats-Msg-Id is derived
// from the region's identity and the value's position, so a restarted Out
// never duplicates within the stream's duplicate window and never loses a
// value.
//
// The channel must exist (fs.ErrNotExist otherwise); any type will do.
// Publish errors and lost connections are retried (reported through
// WithErrorHandler) for as long as ctx lasts; an error JetStream itself
// answered (no such stream, a limit reached) and a closed connection end
// Out with that error. Values not yet acknowledged then stay in the
// channel for the next Out.
func Out(ctx context.Context, channel string, js jetstream.JetStream, subject string, opts ...Option) error {
	rc, err := shmchan.OpenRaw(channel)
	if err != nil {
		return fmt.Errorf("natsbridge: out: %w", err)
	}
	defer rc.Close()
	o := &outer{rc: rc, js: js, subject: subject, o: parse(opts)}
	if err := o.run(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("natsbridge: out %q → %s: %w", channel, subject, err)
	}
	return nil
}

type flight struct {
	pos  uint64
	size int
	sent time.Time
	f    jetstream.PubAckFuture
	ack  *jetstream.PubAck // once taken from f
}

// flights is the FIFO of published values not yet released, oldest first.
type flights struct {
	q    []flight // a ring of len(q) entries
	head int
	n    int
}

func (l *flights) at(i int) *flight { return &l.q[(l.head+i)%len(l.q)] }

func (l *flights) push(fl flight) { l.q[(l.head+l.n)%len(l.q)] = fl; l.n++ }

func (l *flights) drop(k int) {
	for i := 0; i < k; i++ {
		*l.at(i) = flight{}
	}
	l.head, l.n = (l.head+k)%len(l.q), l.n-k
}

type outer struct {
	rc       *shmchan.RawChan
	js       jetstream.JetStream
	subject  string
	o        *options
	st       *stamp
	win      int
	first    []shmchan.RawMsg // Hold's value, when nothing is in flight
	data     []byte           // the value being published, copied out of the ring
	now      time.Time        // when this batch is published
	perr     error            // the publish error that ended a TryHoldMoreFunc
	pend     flights          // published and not yet released; the values held
	acked    int              // pend's first acked were acknowledged (and are not released yet)
	ackBytes int              // their data bytes
	timer    *time.Timer
	pause    backoff
}

// noRetry turns off nats.go's own republishing of a message after "no
// responders": it would publish the message's Data again later, and Data
// is a buffer Out reuses by then. Out republishes by itself instead.
var noRetry = []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)}

// holdRatio bounds the walk of TryHoldMoreFunc, which passes over the
// values in flight to reach the new ones: Out holds more only once the
// window has room for at least one new value per holdRatio in flight.
const holdRatio = 8

// errPublish: publishOne failed with o.perr.
var errPublish = errors.New("publish failed")

func (o *outer) run(ctx context.Context) error {
	info := o.rc.Info()
	o.st = newStamp(info)
	// Values in flight stay in the ring: leave the producer the other half.
	o.win = max(min(o.o.window, info.Capacity/2), 1)
	o.first = make([]shmchan.RawMsg, 1)
	o.pend = flights{q: make([]flight, o.win)}
	// Releases come in batches of relBatch, which is also the room a
	// hold needs (see holdRatio).
	relBatch := max((o.win+holdRatio-1)/holdRatio, 1)
	o.timer = time.NewTimer(time.Hour)
	o.timer.Stop()
	defer o.timer.Stop()
	nc := o.js.Conn()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		published, stalled := false, false
		if o.pend.n == 0 {
			// Nothing in flight: wait for a value, the oldest not
			// released (after a failure, the first to publish again).
			if _, err := o.rc.Hold(ctx, o.first); err != nil {
				switch {
				case ctx.Err() != nil:
					return ctx.Err()
				case errors.Is(err, shmchan.ErrClosed):
					return o.close(ctx)
				case errors.Is(err, shmchan.ErrCorrupt):
					// Hold consumed the bad value (it never reaches JetStream).
					o.o.retry(fmt.Errorf("natsbridge: out: dropped a bad value: %w", err))
					continue
				}
				return err
			}
			if nc.Status() != nats.CONNECTED {
				// Wait for the connection (publishing now would only
				// fill nats.go's reconnect buffer, or fail).
				if err := o.connected(ctx, nc); err != nil {
					return err
				}
				continue
			}
			o.now = time.Now()
			m := &o.first[0]
			f, err := o.js.PublishMsgAsync(o.st.value(o.subject, m.Pos, m.Data), noRetry...)
			if err != nil {
				if perr := o.failed(ctx, err); perr != nil {
					return perr
				}
				continue
			}
			o.pend.push(flight{pos: m.Pos, size: len(m.Data), sent: o.now, f: f})
			published = true
		}
		// Publish the values after those in flight, as the window allows.
		if room := o.win - o.pend.n; room > 0 && room*holdRatio >= o.pend.n && nc.Status() == nats.CONNECTED {
			o.now = time.Now()
			n, err := o.rc.TryHoldMoreFunc(room, o.publishOne)
			published = published || n > 0
			switch {
			case err == nil || errors.Is(err, shmchan.ErrEmpty):
			case err == errPublish && errors.Is(o.perr, jetstream.ErrTooManyStalledMsgs):
				// The JetStream context's own window is smaller than
				// ours: nothing failed, wait for acks.
				stalled = true
			case err == errPublish:
				if perr := o.failed(ctx, o.perr); perr != nil {
					return perr
				}
				continue
			default:
				return err
			}
		}
		// Take the acknowledgements that came, and release them in
		// batches (each release may wake the producer): when there are
		// relBatch of them, when everything in flight is acknowledged, or
		// when Out would otherwise wait while it could publish more.
		if err := o.takeAcks(ctx, 0, 0); err != nil {
			if perr := o.failed(ctx, err); perr != nil {
				return perr
			}
			continue
		}
		// stuck: nothing can be published before acknowledgements come
		// (the JetStream context's window is full, or Out's has too
		// little room to hold more).
		stuck := stalled || (o.win-o.pend.n)*holdRatio < o.pend.n
		if o.acked >= relBatch || o.acked == o.pend.n || o.acked > 0 && !published && !stuck {
			if err := o.release(); err != nil {
				return err
			}
			continue
		}
		if published {
			continue
		}
		// Wait. Stuck with the window full, for the acknowledgement that
		// completes a batch (they come in order: one wake-up for many);
		// otherwise a moment, for the oldest one or for new values.
		wait, ahead := time.Millisecond, 0
		if stuck {
			wait = time.Hour
			if !stalled {
				ahead = relBatch - o.acked - 1
			}
		}
		if err := o.takeAcks(ctx, wait, ahead); err != nil {
			if perr := o.failed(ctx, err); perr != nil {
				return perr
			}
			continue
		}
	}
}

// publishOne publishes the value at pos, whose bytes in the ring are data
// (TryHoldMoreFunc's f: it copies them first).
func (o *outer) publishOne(pos uint64, data []byte) error {
	o.data = append(o.data[:0], data...)
	f, err := o.js.PublishMsgAsync(o.st.value(o.subject, pos, o.data), noRetry...)
	if err != nil {
		o.perr = err
		return errPublish
	}
	o.pend.push(flight{pos: pos, size: len(o.data), sent: o.now, f: f})
	return nil
}

// release consumes the acknowledged values from the channel.
func (o *outer) release() error {
	k := o.acked
	if k == 0 {
		return nil
	}
	if err := o.rc.Release(k); err != nil {
		return err
	}
	o.o.count(k, o.ackBytes)
	o.pend.drop(k)
	o.acked, o.ackBytes = 0, 0
	o.pause.reset()
	return nil
}

// takeAcks counts the acknowledgements that came, in order, after the
// ones counted. With wait > 0 and none there, it first waits up to wait
// for the acknowledgement ahead places after the oldest one missing (or
// for the newest in flight, if fewer), and never past the oldest one's ack
// timeout. It returns an error for a failed publish, or for one not
// acknowledged within the ack timeout.
func (o *outer) takeAcks(ctx context.Context, wait time.Duration, ahead int) error {
	if took, err := o.scanAcks(false); took || err != nil || wait == 0 || o.acked == o.pend.n {
		return err
	}
	oldest := o.pend.at(o.acked)
	late := time.Until(oldest.sent.Add(o.o.ackTimeout))
	if late <= 0 {
		return fmt.Errorf("%w (position %d, %v)", errAckTimeout, oldest.pos, o.o.ackTimeout)
	}
	fl := o.pend.at(min(o.acked+max(ahead, 0), o.pend.n-1))
	if fl.ack != nil {
		fl = oldest // that one came out of order: wait for the oldest
	}
	o.timer.Reset(min(wait, late))
	var err error
	timedOut := false
	select {
	case fl.ack = <-fl.f.Ok():
	case err = <-fl.f.Err():
	case <-ctx.Done():
		err = ctx.Err()
	case <-o.timer.C:
		timedOut = true
	}
	o.timer.Stop()
	if err != nil {
		return err
	}
	took, err := o.scanAcks(true)
	if err == nil && !took && timedOut && late <= wait {
		return fmt.Errorf("%w (position %d, %v)", errAckTimeout, oldest.pos, o.o.ackTimeout)
	}
	return err
}

// scanAcks counts the acknowledgements at hand, in order, after the ones
// counted. With errs, it also looks for the error of the first publish not
// acknowledged (Err makes a channel of its own: only when Out waited).
func (o *outer) scanAcks(errs bool) (bool, error) {
	took := false
	for ; o.acked < o.pend.n; o.acked++ {
		fl := o.pend.at(o.acked)
		if fl.ack == nil {
			select {
			case fl.ack = <-fl.f.Ok():
			default:
				if errs {
					select {
					case err := <-fl.f.Err():
						return took, err
					default:
					}
				}
				return took, nil
			}
		}
		if fl.ack.Duplicate && o.o.counters != nil {
			o.o.counters.Duplicates.Add(1)
		}
		o.ackBytes += fl.size
		took = true
	}
	return took, nil
}

// failed handles a failed publish: a permanent error ends Out; otherwise
// everything in flight is forgotten (it stays held, and the next Hold
// returns it to be published again under the same IDs) and Out pauses.
func (o *outer) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if permanent(err) {
		return err
	}
	// Acknowledged values are safe in the stream: release them, so that
	// only the others are published again.
	if rerr := o.release(); rerr != nil {
		return rerr
	}
	from := o.first[0].Pos
	if o.pend.n > 0 {
		from = o.pend.at(0).pos
	}
	o.o.retry(fmt.Errorf("natsbridge: out: publishing again from position %d: %w", from, err))
	o.pend.drop(o.pend.n)
	if err := o.pause.wait(ctx); err != nil {
		return err
	}
	return o.connected(ctx, o.js.Conn())
}

// connected waits until nc is connected.
func (o *outer) connected(ctx context.Context, nc *nats.Conn) error {
	for {
		switch nc.Status() {
		case nats.CONNECTED:
			return nil
		case nats.CLOSED:
			return nats.ErrConnectionClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// close publishes the close marker (synchronously, retrying).
func (o *outer) close(ctx context.Context) error {
	m := o.st.marker(o.subject, o.rc.Stats().Sent)
	for {
		if err := o.connected(ctx, o.js.Conn()); err != nil {
			return err
		}
		_, err := o.js.PublishMsg(ctx, m)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if permanent(err) {
			return fmt.Errorf("close marker: %w", err)
		}
		o.o.retry(fmt.Errorf("natsbridge: out: publishing the close marker again: %w", err))
		if err := o.pause.wait(ctx); err != nil {
			return err
		}
	}
}

// permanent reports whether a publish error is one retrying cannot cure:
// the connection is closed, or JetStream answered with an error (no such
// stream, a limit, a permission), other than "unavailable" while it starts.
func permanent(err error) bool {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubject) {
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code != 503
	}
	return false
}

// backoff is a pause that doubles from 10 ms to 1 s between failures.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

func (b *backoff) wait(ctx context.Context) error {
	if b.d == 0 {
		b.d = 10 * time.Millisecond
	} else {
		b.d = min(2*b.d, time.Second)
	}
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
