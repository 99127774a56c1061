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
}

type outer struct {
	rc      *shmchan.RawChan
	js      jetstream.JetStream
	subject string
	o       *options
	st      *stamp
	held    []shmchan.RawMsg
	pend    []flight // published and not yet acknowledged, oldest first: held[:len(pend)]
	timer   *time.Timer
	pause   backoff
}

// noRetry turns off nats.go's own republishing of a message after "no
// responders": it would publish the message's Data again later, and Data
// is Hold's buffer, reused by then. Out republishes by itself instead.
var noRetry = []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)}

func (o *outer) run(ctx context.Context) error {
	info := o.rc.Info()
	o.st = newStamp(info)
	// Values in flight stay in the ring: leave the producer the other half.
	win := max(min(o.o.window, info.Capacity/2), 1)
	o.held = make([]shmchan.RawMsg, win)
	o.pend = make([]flight, 0, win)
	o.timer = time.NewTimer(time.Hour)
	o.timer.Stop()
	defer o.timer.Stop()
	nc := o.js.Conn()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Hold returns the values in flight again before any new one, so
		// each Hold copies them once more: hold only when it brings at
		// least as many new values as there are in flight (or nothing
		// is in flight), which bounds the copies to two per value.
		hold := len(o.pend) == 0
		if !hold && nc.Status() == nats.CONNECTED {
			fresh := min(o.rc.Len()-len(o.pend), win-len(o.pend))
			hold = fresh > 0 && fresh >= len(o.pend)
		}
		published := false
		if hold {
			n, err := o.hold(ctx)
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, shmchan.ErrClosed) && len(o.pend) == 0:
				return o.close(ctx)
			case errors.Is(err, shmchan.ErrCorrupt):
				// Hold consumed the bad value (it never reaches JetStream).
				o.o.retry(fmt.Errorf("natsbridge: out: dropped a bad value: %w", err))
				continue
			default:
				return err
			}
			if n > len(o.pend) {
				if nc.Status() != nats.CONNECTED {
					if len(o.pend) == 0 {
						// Nothing in flight: wait for the connection
						// (publishing now would only fill nats.go's
						// reconnect buffer, or fail).
						if err := o.connected(ctx, nc); err != nil {
							return err
						}
						continue
					}
				} else {
					before := len(o.pend)
					err := o.publish(n)
					if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && len(o.pend) > 0 {
						// The JetStream context's own window is smaller
						// than ours: nothing failed, wait for acks.
						err = nil
					}
					if err != nil {
						if perr := o.failed(ctx, err); perr != nil {
							return perr
						}
						continue
					}
					published = len(o.pend) > before
				}
			}
		}
		if len(o.pend) == 0 {
			continue
		}
		// Take the acknowledgements that came. Having published, do not
		// wait; with the window full, wait for the oldest; otherwise wait
		// a moment, for acknowledgements or new values.
		wait := time.Millisecond
		switch {
		case published:
			wait = 0
		case len(o.pend) == win:
			wait = time.Hour
		}
		k, err := o.acked(ctx, wait)
		if err != nil {
			if perr := o.failed(ctx, err); perr != nil {
				return perr
			}
			continue
		}
		if k > 0 {
			if err := o.rc.Release(k); err != nil {
				return err
			}
			o.pend = o.pend[:copy(o.pend, o.pend[k:])]
			o.pause.reset()
		}
	}
}

// hold holds values (the ones in flight first) and checks that those in
// flight are where they were.
func (o *outer) hold(ctx context.Context) (int, error) {
	var n int
	var err error
	if len(o.pend) == 0 {
		n, err = o.rc.Hold(ctx, o.held)
	} else {
		n, err = o.rc.TryHold(o.held)
	}
	if err != nil {
		return 0, err
	}
	if n < len(o.pend) {
		return 0, fmt.Errorf("natsbridge: out: %d values in flight, Hold returned %d", len(o.pend), n)
	}
	for i := range o.pend {
		if o.held[i].Pos != o.pend[i].pos {
			return 0, fmt.Errorf("natsbridge: out: value in flight at %d, Hold returned %d", o.pend[i].pos, o.held[i].Pos)
		}
	}
	return n, nil
}

// publish sends the values held[len(pend):n].
func (o *outer) publish(n int) error {
	now := time.Now()
	for i := len(o.pend); i < n; i++ {
		m := &o.held[i]
		f, err := o.js.PublishMsgAsync(o.st.value(o.subject, m.Pos, m.Data), noRetry...)
		if err != nil {
			return err
		}
		o.pend = append(o.pend, flight{pos: m.Pos, size: len(m.Data), sent: now, f: f})
	}
	return nil
}

// acked counts the acknowledged messages at the head of pend, waiting up
// to wait for the first one. It returns an error for a failed publish, or
// for one not acknowledged within the ack timeout.
func (o *outer) acked(ctx context.Context, wait time.Duration) (int, error) {
	k, bytes := 0, 0
	defer func() { o.o.count(k, bytes) }()
	for k < len(o.pend) {
		fl := &o.pend[k]
		var ack *jetstream.PubAck
		var err error
		select {
		case ack = <-fl.f.Ok():
		case err = <-fl.f.Err():
		default:
			if k > 0 || wait == 0 {
				return k, nil
			}
			late := time.Until(fl.sent.Add(o.o.ackTimeout))
			if late <= 0 {
				return k, fmt.Errorf("%w (position %d, %v)", errAckTimeout, fl.pos, o.o.ackTimeout)
			}
			o.timer.Reset(min(wait, late))
			select {
			case ack = <-fl.f.Ok():
			case err = <-fl.f.Err():
			case <-ctx.Done():
				err = ctx.Err()
			case <-o.timer.C:
			}
			o.timer.Stop()
			if ack == nil && err == nil {
				if late <= wait {
					continue // the ack timeout: the next look reports it
				}
				return k, nil // the moment is over
			}
		}
		if err != nil {
			return k, err
		}
		if ack.Duplicate && o.o.counters != nil {
			o.o.counters.Duplicates.Add(1)
		}
		bytes += fl.size
		k++
		wait = 0
	}
	return k, nil
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
	o.o.retry(fmt.Errorf("natsbridge: out: publishing again from position %d: %w", o.held[0].Pos, err))
	o.pend = o.pend[:0]
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
