package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/cmd/shmchan/internal/capture"
	"github.com/shmchan/shmchan/cmd/shmchan/internal/progress"
)

const replayUsage = `usage: shmchan replay [-rate recorded|max|N] [-close] [-partial] FILE NAME

Sends the values of a recording (made by 'shmchan record') into the
existing channel NAME, in order, taking a sender role. The channel must
carry the recorded type: its codec, fingerprint and value size must be the
recording's, else replay refuses with "shmchan: type mismatch" and sends
nothing. A value longer than the channel's max message size is refused
the same way, before anything is sent.

The whole file is checked before the first value is sent: a truncated or
damaged recording is an error naming the first bad record (its index and
byte offset) and nothing is sent, unless -partial is given.

  -rate R    recorded: the pace of the recording (the gaps between the
             times the recorder took the values, long pauses included;
             the default); max: as fast as the channel takes them; a
             number: that many values per second
  -close     close the channel for sending after the last value
             (receivers drain it, then get ErrClosed)
  -partial   replay the intact records before the damage of a truncated
             or damaged file, and report the damage as a warning

A progress line (values, rate, elapsed) is shown on a terminal, on
standard error; a summary line is printed on standard output at the end.

Example:
  shmchan replay -rate max -close /tmp/orders.rec orders-test
  shmchan replay -rate 1000 /tmp/orders.rec orders-test

Exit status: 0 when every value (with -partial: every intact value) was
sent, 1 on an error, 2 for a usage error.
`

func runReplay(args []string) int {
	fset := flag.NewFlagSet("shmchan replay", flag.ContinueOnError)
	rate := fset.String("rate", "recorded", "recorded, max, or values per second")
	closeSend := fset.Bool("close", false, "close for sending after the last value")
	partial := fset.Bool("partial", false, "replay the intact part of a damaged file")
	operands, ok, code := parseArgs(fset, args, replayUsage)
	if !ok {
		return code
	}
	if len(operands) != 2 {
		fmt.Fprintf(os.Stderr, "shmchan replay: want FILE and NAME, got %d arguments\n%s", len(operands), replayUsage)
		return 2
	}
	perSec, err := parseRate(*rate)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shmchan replay: -rate: %v\n%s", err, replayUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := replayOpts{file: operands[0], name: operands[1], perSec: perSec, closeSend: *closeSend,
		partial: *partial, line: progress.New(os.Stderr)}
	res, err := replay(ctx, o)
	if err != nil {
		errf("replay", "%v", err)
		return 1
	}
	if res.damage != nil {
		errf("replay", "warning: %v; replayed the %d intact values before it", res.damage, res.count)
	}
	rateText := "-"
	if s := res.elapsed.Seconds(); s > 0 {
		rateText = progress.Count(float64(res.count)/s) + "/s"
	}
	fmt.Printf("replayed %d values from %s into %s in %v (%s)\n",
		res.count, o.file, o.name, res.elapsed.Round(time.Millisecond), rateText)
	return 0
}

// parseRate turns -rate into values per second: -1 for the recorded pace,
// 0 for as fast as possible.
func parseRate(s string) (float64, error) {
	switch s {
	case "recorded":
		return -1, nil
	case "max":
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || v > 1e12 {
		return 0, fmt.Errorf("%q: want recorded, max, or a positive number of values per second", s)
	}
	return v, nil
}

type replayOpts struct {
	file, name string
	perSec     float64 // -1: recorded pace, 0: max
	closeSend  bool
	partial    bool
	line       *progress.Line
}

type replayResult struct {
	count   int64
	elapsed time.Duration
	damage  error // with -partial: the damage that ended the replay
}

// replayBatch is the most values one SendBatch carries.
const replayBatch = 256

func replay(ctx context.Context, o replayOpts) (res replayResult, err error) {
	f, err := os.Open(o.file)
	if err != nil {
		return res, err
	}
	defer f.Close()
	// Check the whole file first: nothing is sent from a damaged one.
	sum, damage := capture.Scan(bufio.NewReaderSize(f, 1<<20))
	if damage != nil {
		var de *capture.DamageError
		if !o.partial || !errors.As(damage, &de) || de.Record < 0 {
			return res, fmt.Errorf("%s: %w", o.file, damage)
		}
		res.damage = damage
	}
	conn, err := openRawConn(o.name)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	if err := sameType(o.name, conn.Info(), sum.Header); err != nil {
		return res, err
	}
	if info := conn.Info(); sum.MaxLen > info.MaxMsg {
		return res, fmt.Errorf("%w: %s holds values of up to %d bytes, the recording has one of %d",
			shmchan.ErrTooLarge, o.name, info.MaxMsg, sum.MaxLen)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	r, err := capture.NewReader(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w", o.file, err)
	}

	start := time.Now()
	// due returns when value i (recorded at t) is to be sent.
	var last time.Time
	due := func(i int64, t int64) time.Time {
		var d time.Time
		switch {
		case o.perSec == 0:
			return start
		case o.perSec > 0:
			d = start.Add(time.Duration(float64(i) / o.perSec * float64(time.Second)))
		default:
			d = start.Add(time.Duration(t - sum.First))
		}
		if d.Before(last) { // the recorder's clock stepped back
			d = last
		}
		last = d
		return d
	}
	batch := make([][]byte, 0, replayBatch)
	bufs := make([][]byte, replayBatch)
	var pend []byte // a value read but not yet due
	var havePend bool
	var pendAt time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for res.count < sum.Count {
		batch = batch[:0]
		for len(batch) < replayBatch && res.count+int64(len(batch)) < sum.Count {
			if !havePend {
				rec, err := r.Next()
				if err != nil { // the file changed since it was checked
					return res, fmt.Errorf("%s: %w", o.file, err)
				}
				pend = append(pend[:0], rec.Data...)
				havePend, pendAt = true, due(rec.Index, rec.Time)
			}
			if pendAt.After(time.Now()) {
				break
			}
			i := len(batch)
			bufs[i], pend = pend, bufs[i]
			batch = append(batch, bufs[i])
			havePend = false
		}
		if len(batch) == 0 {
			// Nothing due yet: wait for the next value's time.
			timer.Reset(time.Until(pendAt))
			select {
			case <-ctx.Done():
				return res, fmt.Errorf("interrupted after %d values: %w", res.count, ctx.Err())
			case <-timer.C:
			}
			continue
		}
		n, err := conn.SendBatch(ctx, batch)
		res.count += int64(n)
		o.line.Update("replay %s: %s", o.name, progress.Rate(uint64(res.count), "values", time.Since(start)))
		if err != nil {
			o.line.Clear()
			return res, fmt.Errorf("%s: after %d values: %w", o.name, res.count, err)
		}
	}
	o.line.Set("replay %s: %s", o.name, progress.Rate(uint64(res.count), "values", time.Since(start)))
	o.line.Done()
	if o.closeSend {
		if err := conn.CloseSend(); err != nil {
			return res, err
		}
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// sameType checks that a channel carries what a recording holds. Its
// error wraps shmchan.ErrTypeMismatch.
func sameType(name string, got rawInfo, want capture.Header) error {
	if got.Codec == want.Codec && got.Fingerprint == want.Fingerprint && got.Raw == want.Raw &&
		(!want.Raw || got.ValueSize == want.ValueSize) {
		return nil
	}
	describe := func(typ, codec string, fp uint64, raw bool, size int) string {
		s := fmt.Sprintf("%s (codec %s, fingerprint %016x", orDash(typ), codec, fp)
		if raw {
			s += fmt.Sprintf(", raw %d-byte values", size)
		}
		return s + ")"
	}
	return fmt.Errorf("%w: %s carries %s, the recording holds %s", shmchan.ErrTypeMismatch, name,
		describe(got.Type, got.Codec, got.Fingerprint, got.Raw, got.ValueSize),
		describe(want.Type, want.Codec, want.Fingerprint, want.Raw, want.ValueSize))
}
