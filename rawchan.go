package shmchan

import (
	"context"
	"fmt"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/layout"
)

// RawChan is an untyped handle on an existing channel: it moves each
// value's encoded slot bytes, whatever the channel's type. It is for
// bridges and tools that cannot know T (the NATS bridge, shmchan record and
// replay): they carry the bytes together with RawInfo's codec, type and
// fingerprint, and the far side refuses a region of another type.
//
// Receiving is process-then-acknowledge: Hold returns values without
// consuming them, and Release consumes the oldest ones once the caller has
// handled them (for example, once another system acknowledged them). A
// value held and not released when the process dies stays in the channel
// for the next receiver. The methods are safe for concurrent use, with the
// same roles as Chan's: a RawChan becomes a sender on its first send and
// the receiver on its first Hold.
type RawChan struct {
	c    *Chan[[]byte]
	info RawInfo
	held []uint64 // positions held (the last Hold's and the TryHoldMore's after it), oldest first; guarded by c.rmu
}

// RawInfo describes a channel's values and identity for untyped users.
type RawInfo struct {
	Codec       string // codec name from the header ("raw", "bytes", "json", ...)
	Type        string // Go type name from the header (informational)
	Fingerprint uint64 // the type fingerprint two sides must share
	Raw         bool   // values are the raw bytes of a pointer-free type, all ValueSize long
	ValueSize   int    // raw: the exact size of every value; otherwise 0
	MaxMsg      int    // the largest value in bytes
	Capacity    int    // slots
	// ID identifies this region: it changes when the name is unlinked and
	// created again (it is the header's checksum, which covers the
	// creator's pid and creation time).
	ID uint64
}

// RawMsg is one value held by RawChan.Hold.
type RawMsg struct {
	Pos  uint64 // the value's position in the channel, unique within one RawInfo.ID
	Data []byte // a copy of the value's slot bytes; Hold reuses its capacity
}

// OpenRaw attaches to an existing channel of any type. Layout options are
// checked as Open checks them; WithCodec is ignored.
func OpenRaw(name string, opts ...Option) (*RawChan, error) {
	opts = append(opts[:len(opts):len(opts)], func(o *options) { o.adopt = true })
	c, err := open[[]byte](name, opts)
	if err != nil {
		return nil, err
	}
	h := c.hdr
	info := RawInfo{
		Codec: h.CodecName, Type: h.TypeName, Fingerprint: h.Fingerprint,
		Raw: h.Flags&layout.FlagRaw != 0, MaxMsg: int(h.MaxMsg), Capacity: int(h.Capacity),
		ID: h.Checksum,
	}
	if info.Raw {
		info.ValueSize = int(h.MaxMsg)
	}
	return &RawChan{c: c, info: info}, nil
}

// Info describes the channel.
func (r *RawChan) Info() RawInfo { return r.info }

// Name returns the channel's name as given.
func (r *RawChan) Name() string { return r.c.name }

func (r *RawChan) check(b []byte) error {
	if r.info.Raw && len(b) != r.info.ValueSize {
		return fmt.Errorf("shmchan: %q: %w: a value of %d bytes for %s, which is %d bytes", r.c.name, ErrTooLarge, len(b), r.info.Type, r.info.ValueSize)
	}
	if len(b) > r.info.MaxMsg {
		return fmt.Errorf("shmchan: %q: %w: a value of %d bytes, the maximum is %d", r.c.name, ErrTooLarge, len(b), r.info.MaxMsg)
	}
	return nil
}

// Send sends one value's slot bytes, blocking while the channel is full.
// A raw channel takes exactly ValueSize bytes; other lengths, and values
// longer than MaxMsg, are ErrTooLarge.
func (r *RawChan) Send(ctx context.Context, b []byte) error {
	if err := r.check(b); err != nil {
		return err
	}
	return r.c.Send(ctx, b)
}

// SendBatch sends every value of bs in order, as Chan.SendBatch does. It
// checks every length before it sends anything.
func (r *RawChan) SendBatch(ctx context.Context, bs [][]byte) (int, error) {
	for _, b := range bs {
		if err := r.check(b); err != nil {
			return 0, err
		}
	}
	return r.c.SendBatch(ctx, bs)
}

// CloseSend closes the channel for sending, as Chan.CloseSend does.
func (r *RawChan) CloseSend() error { return r.c.CloseSend() }

// Close detaches the handle, as Chan.Close does. Held values that were not
// released stay in the channel.
func (r *RawChan) Close() error { return r.c.Close() }

// Stats returns the channel's counters.
func (r *RawChan) Stats() Stats { return r.c.Stats() }

// Len returns the number of values queued now.
func (r *RawChan) Len() int { return r.c.Len() }

// Hold waits for at least one value, then fills msgs with up to len(msgs)
// values starting at the oldest one not released, without consuming them:
// a second Hold returns the same values first, and a process that dies
// holding them leaves them to the next receiver. Release consumes them. It
// returns ErrClosed once the channel is closed for sending and drained.
func (r *RawChan) Hold(ctx context.Context, msgs []RawMsg) (int, error) {
	return r.hold(ctx, len(msgs), true, false, copyTo(msgs))
}

// TryHold is Hold that returns ErrEmpty instead of waiting.
func (r *RawChan) TryHold(msgs []RawMsg) (int, error) {
	return r.hold(context.Background(), len(msgs), false, false, copyTo(msgs))
}

// TryHoldMore holds the values after the ones already held, without
// waiting: it fills msgs with up to len(msgs) of the next values and adds
// them to those held, which stay held (Release still counts from the
// oldest). It is for callers that keep many values in flight (the NATS
// bridge): each value is copied once, where Hold would copy the ones in
// flight again. It still walks past the held values in the ring (cheaply,
// without copying them), so hold in batches. ErrEmpty means there is no
// value after the held ones yet; a bad value after them ends the batch
// before it, and is reported once it is the oldest. With nothing held it
// is TryHold. In the work-queue and broadcast modes, which hold one value
// at a time, it finds nothing while a value is held.
func (r *RawChan) TryHoldMore(msgs []RawMsg) (int, error) {
	return r.hold(context.Background(), len(msgs), false, true, copyTo(msgs))
}

// TryHoldMoreFunc is TryHoldMore that hands up to max values to f, oldest
// first, instead of copying them into RawMsgs: data is the value's slot
// bytes in the shared region, valid only while f runs, so f copies what it
// keeps (a bridge copies it into its outgoing buffer, and the value is
// copied once). f runs under the fault guard: a region that faults while f
// reads it is an error, not a crash, so f should read data before it does
// anything else. A value for which f returns nil is held; an error from f
// ends the batch before that value (it is not held) and is returned, with
// the number of values held before it.
func (r *RawChan) TryHoldMoreFunc(max int, f func(pos uint64, data []byte) error) (int, error) {
	return r.hold(context.Background(), max, false, true, f)
}

// copyTo is the take of Hold, TryHold and TryHoldMore: the i-th value
// taken is copied into msgs[i].
func copyTo(msgs []RawMsg) func(uint64, []byte) error {
	i := 0
	return func(pos uint64, b []byte) error {
		m := &msgs[i]
		m.Pos = pos
		m.Data = append(m.Data[:0], b...)
		i++
		return nil
	}
}

// hold scans up to max values after the held ones (after none: !more),
// handing each to take, which holds it by returning nil.
func (r *RawChan) hold(ctx context.Context, max int, block, more bool, take func(uint64, []byte) error) (n int, err error) {
	c := r.c
	c.rmu.Lock()
	defer c.rmu.Unlock()
	// On an error (a memory fault too), the values this call took are not
	// held: the caller did not get them. take's own error keeps the ones
	// take accepted (scan sets keep to -1 then).
	keep := -1
	n, err = r.scan(ctx, max, block, more, take, &keep)
	if err != nil && keep >= 0 {
		r.held = r.held[:keep]
	}
	return n, err
}

// scan is hold's work under the fault guard: one deferred call, so that
// it stays open-coded (with hold's lock and trim in the same function the
// three defers were not: go build -gcflags=-d=defer).
func (r *RawChan) scan(ctx context.Context, max int, block, more bool, take func(uint64, []byte) error, keep *int) (n int, err error) {
	c := r.c
	defer region.Recover(r.c.hit, &err, region.Guard(r.c.hit))
	rv, err := c.receiver()
	if err != nil {
		return 0, err
	}
	if !more || len(r.held) == 0 {
		r.held, more = r.held[:0], false
	}
	if max <= 0 {
		return 0, nil
	}
	// Scans start at the oldest value not released: the held ones come
	// first again, and must be where they were.
	skip, seen := len(r.held), 0
	*keep = skip
	var bad, stop error
	f := func(pos uint64, b []byte) {
		if bad != nil || stop != nil {
			return
		}
		if seen < skip {
			if pos != r.held[seen] {
				bad = fmt.Errorf("%w: held value %d of %d at position %d, the ring has %d there", ErrCorrupt, seen+1, skip, r.held[seen], pos)
				return
			}
			seen++
			return
		}
		if r.info.Raw && len(b) != r.info.ValueSize {
			bad = fmt.Errorf("shmchan: %q: %w: value of %d bytes at position %d, the type has %d", c.name, ErrCorrupt, len(b), pos, r.info.ValueSize)
			return
		}
		if err := take(pos, b); err != nil {
			stop = err
			return
		}
		r.held = append(r.held, pos)
	}
	if block {
		_, err = rv.Scan(ctx, max, f)
	} else {
		_, err = rv.TryScan(skip+max, f)
	}
	n = len(r.held) - skip
	if stop != nil {
		*keep = -1
		return n, stop // the caller's error, as it gave it
	}
	if more && err == nil && bad == nil && seen < skip {
		err = fmt.Errorf("%w: %d values held, the ring has %d", ErrCorrupt, skip, seen)
	}
	if more && err == nil && (bad == nil || seen == skip) {
		if n == 0 {
			// Nothing after the held values (or a bad one first: the
			// Hold that has it oldest reports it).
			return 0, c.named(ErrEmpty)
		}
		return n, nil
	}
	if err == nil {
		err = bad
	}
	if n > 0 && err == bad {
		// Hand out the good values before a bad one; the bad one is
		// reported by the next Hold, when it is the oldest.
		return n, nil
	}
	if err != nil {
		if bad != nil && len(r.held) == 0 {
			// The oldest value is bad: consume it so the channel does not
			// wedge on it (as Recv does), and report it.
			rv.ReleaseN(1)
		}
		return 0, c.named(err)
	}
	return n, nil
}

// Release consumes the n oldest values held (those the last Hold returned
// and the TryHoldMore and TryHoldMoreFunc calls after it; n at most that
// many). Values after them
// stay held, and the next Hold returns them first.
func (r *RawChan) Release(n int) (err error) {
	c := r.c
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer region.Recover(r.c.hit, &err, region.Guard(r.c.hit))
	if n == 0 {
		return nil
	}
	if n < 0 || n > len(r.held) || c.rcv == nil {
		return fmt.Errorf("shmchan: %q: release %d values, %d are held", c.name, n, len(r.held))
	}
	if c.dead.Load() {
		return c.closedErr()
	}
	if err := c.rcv.ReleaseTo(r.held[n-1] + 1); err != nil {
		return fmt.Errorf("shmchan: %q: %w", c.name, err)
	}
	if n == len(r.held) {
		r.held = r.held[:0]
	} else {
		r.held = r.held[n:] // not copied: many may be held (TryHoldMore)
	}
	return nil
}
