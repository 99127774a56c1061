package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmchan/shmchan"
)

var subjectCounter atomicCounter

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

// pipeline is A → Out → stream → In → B in this process.
type pipeline struct {
	t              *testing.T
	kind           string
	nameA, nameB   string
	a, b           *vchan
	subject        string
	stream         jetstream.Stream
	cons           jetstream.Consumer
	outC, inC      Counters
	outErr, inErr  chan error
	outErrs, inErs errorLog
}

type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func newPipeline(t *testing.T, kind string, js jetstream.JetStream, storage jetstream.StorageType, capacity int) *pipeline {
	p := &pipeline{t: t, kind: kind, nameA: testName(t), nameB: testName(t)}
	p.a = mkchan(t, kind, p.nameA, capacity)
	p.b = mkchan(t, kind, p.nameB, capacity)
	n := subjectCounter.next()
	p.subject = fmt.Sprintf("bridge.%d", n)
	p.stream = mkstream(t, js, fmt.Sprintf("S%d", n), p.subject, storage)
	p.cons = mkconsumer(t, p.stream, "in", 5*time.Second)
	return p
}

// run starts Out on jsOut and In on p.cons.
func (p *pipeline) run(ctx context.Context, jsOut jetstream.JetStream, cons jetstream.Consumer, opts ...Option) {
	p.outErr, p.inErr = make(chan error, 1), make(chan error, 1)
	go func() {
		p.outErr <- Out(ctx, p.nameA, jsOut, p.subject, append([]Option{WithCounters(&p.outC), WithErrorHandler(p.outErrs.add)}, opts...)...)
	}()
	go func() {
		p.inErr <- In(ctx, cons, p.nameB, append([]Option{WithCounters(&p.inC), WithErrorHandler(p.inErs.add)}, opts...)...)
	}()
}

// produce sends values [0, n) into A, then closes it.
func (p *pipeline) produce(ctx context.Context, n uint64) chan error {
	done := make(chan error, 1)
	go func() {
		for i := uint64(0); i < n; i++ {
			if err := p.a.send(ctx, i); err != nil {
				done <- err
				return
			}
		}
		done <- p.a.closeSend()
	}()
	return done
}

// result is what B's reader saw.
type result struct {
	count      []int // times each value arrived
	total      int
	inversions int // values that arrived after a later one
	err        error
}

// consume reads B until it is closed.
func (p *pipeline) consume(ctx context.Context, n uint64, progress func(int)) chan result {
	done := make(chan result, 1)
	go func() {
		r := result{count: make([]int, n)}
		var next uint64 // the value expected next in order
		for {
			seq, err := p.b.recv(ctx, next)
			if errors.Is(err, shmchan.ErrClosed) {
				break
			}
			if err != nil {
				r.err = err
				break
			}
			if seq >= n {
				r.err = fmt.Errorf("value %d out of range", seq)
				break
			}
			r.count[seq]++
			r.total++
			if seq < next {
				r.inversions++
			} else {
				next = seq + 1
			}
			if progress != nil {
				progress(r.total)
			}
		}
		done <- r
	}()
	return done
}

// finish waits (up to a minute each) for the producer prod, Out, In and
// the consumer res to end, failing the test on an error of any, and
// returns what the consumer saw.
func (p *pipeline) finish(t *testing.T, prod chan error, res chan result) result {
	t.Helper()
	if err := waitErr(t, "producer", prod, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, "Out", p.outErr, time.Minute); err != nil {
		t.Fatalf("Out: %v", err)
	}
	if err := waitErr(t, "In", p.inErr, time.Minute); err != nil {
		t.Fatalf("In: %v", err)
	}
	r := waitResult(t, res, time.Minute)
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r
}

func waitErr(t *testing.T, what string, ch chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v", what, d)
		return nil
	}
}

func waitResult(t *testing.T, ch chan result, d time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("B's reader did not finish within %v", d)
		return result{}
	}
}

func TestRoundTrip(t *testing.T) {
	n := uint64(200_000)
	if testing.Short() {
		n = 20_000
	}
	srv := startServer(t)
	_, js := connect(t, srv.url())
	for _, kind := range []string{"raw", "bytes"} {
		t.Run(kind, func(t *testing.T) {
			p := newPipeline(t, kind, js, jetstream.FileStorage, 4096)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			prod := p.produce(ctx, n)
			res := p.consume(ctx, n, nil)
			p.run(ctx, js, p.cons)
			r := p.finish(t, prod, res)
			// In order, each exactly once.
			if r.total != int(n) || r.inversions != 0 {
				ci, err := p.cons.Info(ctx)
				t.Fatalf("B got %d values (%d out of order), want %d in order; consumer %+v, %v; In reported %v", r.total, r.inversions, n, ci, err, p.inErs.all())
			}
			for i, c := range r.count {
				if c != 1 {
					t.Fatalf("value %d arrived %d times", i, c)
				}
			}
			if got := p.outC.Values.Load(); got != n {
				t.Errorf("Out counted %d values, want %d", got, n)
			}
			if got := p.outC.Duplicates.Load(); got != 0 {
				t.Errorf("Out saw %d duplicates in a run without faults", got)
			}
			if got := p.inC.Values.Load(); got != n {
				t.Errorf("In counted %d values, want %d", got, n)
			}
			info, err := p.stream.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != n+1 {
				t.Errorf("stream holds %d messages, want %d values and the marker", info.State.Msgs, n)
			}
			ci, err := p.cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ci.NumAckPending != 0 || ci.NumRedelivered != 0 || ci.AckFloor.Stream != n+1 {
				t.Errorf("consumer: %d ack pending, %d redelivered, ack floor %d; want 0, 0, %d", ci.NumAckPending, ci.NumRedelivered, ci.AckFloor.Stream, n+1)
			}
			if errs := append(p.outErrs.all(), p.inErs.all()...); len(errs) > 0 {
				t.Errorf("errors reported in a run without faults: %v", errs)
			}
			d := time.Since(start)
			t.Logf("%d %s values A → B in %v (%.0f values/s)", n, kind, d.Round(time.Millisecond), float64(n)/d.Seconds())
		})
	}
}

// TestMessageFormat checks the contract's headers on what Out publishes.
func TestMessageFormat(t *testing.T) {
	srv := startServer(t)
	_, js := connect(t, srv.url())
	p := newPipeline(t, "bytes", js, jetstream.MemoryStorage, 64)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitErr(t, "producer", p.produce(ctx, 10), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := Out(ctx, p.nameA, js, p.subject); err != nil {
		t.Fatal(err)
	}
	rc, err := shmchan.OpenRaw(p.nameA)
	if err != nil {
		t.Fatal(err)
	}
	info := rc.Info()
	rc.Close()
	msgs := readStream(t, p.stream)
	if len(msgs) != 11 {
		t.Fatalf("stream holds %d messages, want 10 values and the marker", len(msgs))
	}
	region := fmt.Sprintf("%016x", info.ID)
	for i, m := range msgs {
		h := m.header
		for key, want := range map[string]string{
			HeaderCodec:       "bytes",
			HeaderType:        info.Type,
			HeaderFingerprint: fmt.Sprintf("%016x", info.Fingerprint),
			HeaderRegion:      region,
		} {
			if got := h.Get(key); got != want {
				t.Errorf("message %d: %s = %q, want %q", i, key, got, want)
			}
		}
		if i == 10 {
			if h.Get(HeaderClose) == "" || len(m.data) != 0 || h.Get(jetstream.MsgIDHeader) != region+"-close" || h.Get(HeaderPos) != "" {
				t.Errorf("marker: headers %v, %d bytes of data", h, len(m.data))
			}
			continue
		}
		if got, want := h.Get(jetstream.MsgIDHeader), fmt.Sprintf("%s-%d", region, i); got != want {
			t.Errorf("message %d: Nats-Msg-Id %q, want %q", i, got, want)
		}
		if got, want := h.Get(HeaderPos), fmt.Sprint(i); got != want {
			t.Errorf("message %d: %s %q, want %q", i, HeaderPos, got, want)
		}
		if h.Get(HeaderClose) != "" {
			t.Errorf("message %d has a %s header", i, HeaderClose)
		}
		if err := checkbytes(m.data, uint64(i)); err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	// A second Out on the closed, drained channel publishes the marker
	// again under the same ID: the stream keeps one.
	if err := Out(ctx, p.nameA, js, p.subject); err != nil {
		t.Fatal(err)
	}
	if si, err := p.stream.Info(ctx); err != nil || si.State.Msgs != 11 {
		t.Fatalf("after a second Out the stream holds %v messages (%v), want 11", si.State.Msgs, err)
	}
}

func TestTypeRefusal(t *testing.T) {
	srv := startServer(t)
	_, js := connect(t, srv.url())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newPipeline(t, "raw", js, jetstream.MemoryStorage, 64)
	p.cons = mkconsumer(t, p.stream, "in", time.Second) // each refusal leaves the messages to be redelivered
	if err := waitErr(t, "producer", p.produce(ctx, 20), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := Out(ctx, p.nameA, js, p.subject); err != nil {
		t.Fatal(err)
	}
	wrong := map[string]func(name string) (func(), error){
		"bytes": func(name string) (func(), error) {
			c, err := shmchan.Create[[]byte](name, shmchan.WithMaxMessageSize(64))
			if err != nil {
				return nil, err
			}
			return func() { c.Close() }, nil
		},
		// Same size, another layout: only the fingerprint tells them apart.
		"other": func(name string) (func(), error) {
			c, err := shmchan.Create[other](name)
			if err != nil {
				return nil, err
			}
			return func() { c.Close() }, nil
		},
	}
	for what, create := range wrong {
		name := testName(t)
		closeB, err := create(name)
		if err != nil {
			t.Fatal(err)
		}
		var reported errorLog
		err = In(ctx, p.cons, name, WithErrorHandler(reported.add))
		if !errors.Is(err, shmchan.ErrTypeMismatch) {
			t.Fatalf("%s: In = %v, want ErrTypeMismatch", what, err)
		}
		t.Logf("%s: %v", what, err)
		rc, err := shmchan.OpenRaw(name)
		if err != nil {
			t.Fatal(err)
		}
		if n := rc.Len(); n != 0 {
			t.Errorf("%s: %d values reached the channel of another type", what, n)
		}
		rc.Close()
		closeB()
		ci, err := p.cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci.AckFloor.Stream != 0 || ci.AckFloor.Consumer != 0 {
			t.Errorf("%s: ack floor %+v: something was acked", what, ci.AckFloor)
		}
		if errs := reported.all(); len(errs) > 0 {
			t.Errorf("%s: errors reported: %v", what, errs)
		}
	}
	// The right type still gets every value once (in the order of the
	// redeliveries, which need not be the stream's).
	res := p.consume(ctx, 20, nil)
	if err := In(ctx, p.cons, p.nameB); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, res, time.Minute)
	if r.err != nil || r.total != 20 {
		t.Fatalf("B got %d values, %v", r.total, r.err)
	}
	for i, c := range r.count {
		if c != 1 {
			t.Fatalf("value %d arrived %d times", i, c)
		}
	}
}

func TestMalformed(t *testing.T) {
	srv := startServer(t)
	_, js := connect(t, srv.url())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newPipeline(t, "raw", js, jetstream.MemoryStorage, 256)
	rc, err := shmchan.OpenRaw(p.nameA)
	if err != nil {
		t.Fatal(err)
	}
	st := newStamp(rc.Info())
	rc.Close()
	valid := func(i uint64) *nats.Msg {
		v := mkrec(i)
		b := make([]byte, 16)
		for j := 0; j < 8; j++ {
			b[j] = byte(v.Seq >> (8 * j))
			b[8+j] = byte(v.Sum >> (8 * j))
		}
		return st.value(p.subject, i, b)
	}
	edit := func(m *nats.Msg, f func(h nats.Header)) *nats.Msg {
		h := nats.Header{}
		for k, v := range m.Header {
			h[k] = append([]string(nil), v...)
		}
		f(h)
		m.Header = h
		return m
	}
	bad := []*nats.Msg{
		{Subject: p.subject, Data: make([]byte, 16)}, // no headers
		{Subject: p.subject, Data: []byte("garbage that is no value")},
		edit(valid(1000), func(h nats.Header) { delete(h, HeaderFingerprint) }),
		edit(valid(1001), func(h nats.Header) { h.Set(HeaderFingerprint, "xyz") }),
		edit(valid(1002), func(h nats.Header) { h.Set(HeaderRegion, "ABCDEF0123456789") }),
		edit(valid(1003), func(h nats.Header) { h.Set(HeaderPos, "minus one") }),
		edit(valid(1004), func(h nats.Header) { h.Add(HeaderCodec, "raw") }),
		edit(valid(1005), func(h nats.Header) { h.Set(HeaderClose, "1") }), // a marker with data
		func() *nats.Msg { m := valid(1006); m.Data = m.Data[:15]; return m }(),
		func() *nats.Msg { m := valid(1007); m.Data = append(m.Data, 0); return m }(),
	}
	const n = 100
	pub := func(m *nats.Msg) {
		t.Helper()
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(0); i < n; i++ {
		if i%10 == 3 {
			pub(bad[i/10])
		}
		pub(valid(i))
	}
	pub(st.marker(p.subject, n))
	res := p.consume(ctx, n, nil)
	var reported errorLog
	var c Counters
	if err := In(ctx, p.cons, p.nameB, WithErrorHandler(reported.add), WithCounters(&c), WithBatch(7)); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, res, time.Minute)
	if r.err != nil || r.total != n || r.inversions != 0 {
		t.Fatalf("B got %d values, %d out of order, %v; want %d in order", r.total, r.inversions, r.err, n)
	}
	errs := reported.all()
	if len(errs) != len(bad) || c.Malformed.Load() != uint64(len(bad)) {
		t.Fatalf("%d errors reported, %d counted, want %d: %v", len(errs), c.Malformed.Load(), len(bad), errs)
	}
	for _, err := range errs {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("reported %v, want ErrMalformed", err)
		}
	}
	t.Logf("first report: %v", errs[0])
	ci, err := p.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := uint64(n + len(bad) + 1)
	if ci.NumAckPending != 0 || ci.NumRedelivered != 0 || ci.AckFloor.Stream != total {
		t.Errorf("consumer: %d ack pending, %d redelivered, floor %d; want 0, 0, %d", ci.NumAckPending, ci.NumRedelivered, ci.AckFloor.Stream, total)
	}
}

// TestServerRestart stops the server mid-stream and starts it again on the
// same port and store: both sides reconnect and go on, nothing is lost.
func TestServerRestart(t *testing.T) {
	n := uint64(100_000)
	if testing.Short() {
		n = 20_000
	}
	srv := startServer(t)
	_, jsSetup := connect(t, srv.url())
	p := newPipeline(t, "raw", jsSetup, jetstream.FileStorage, 4096)
	p.cons = mkconsumer(t, p.stream, "in", 2*time.Second)
	ncOut, jsOut := connect(t, srv.url())
	_, jsIn := connect(t, srv.url())
	cons, err := jsIn.Consumer(context.Background(), p.stream.CachedInfo().Config.Name, "in")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := p.consume(ctx, n, nil)
	prod := p.produce(ctx, n)
	p.run(ctx, jsOut, cons)
	// Stop the server once Out has a third of the values acknowledged
	// (In is behind it, and neither is done).
	for deadline := time.Now().Add(time.Minute); p.outC.Values.Load() < n/3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Out did not get a third of the values acknowledged within a minute")
		}
	}
	before, inBefore := p.outC.Values.Load(), p.inC.Values.Load()
	srv.stop()
	time.Sleep(300 * time.Millisecond)
	if ncOut.Status() == nats.CONNECTED {
		t.Fatal("Out's connection still connected with the server stopped")
	}
	srv.start()
	r := p.finish(t, prod, res)
	for i, c := range r.count {
		if c == 0 {
			t.Fatalf("value %d lost", i)
		}
	}
	info, err := p.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n+1 {
		t.Errorf("stream holds %d messages, want each of %d values once and the marker", info.State.Msgs, n)
	}
	dups := r.total - int(n)
	t.Logf("restart with %d values acked to Out and %d committed by In: B got %d values, %d duplicates, %d out of order; Out: %d duplicate acks, %d retries; In: %d retries",
		before, inBefore, r.total, dups, r.inversions, p.outC.Duplicates.Load(), p.outC.Retries.Load(), p.inC.Retries.Load())
	if p.outC.Retries.Load() == 0 || p.inC.Retries.Load() == 0 || inBefore >= n {
		t.Errorf("a side did not see the server go, or In was done: the test did not test a restart")
	}
	// Acknowledgements on their way when the server went are lost: their
	// values come again, at most a fetch or two.
	if dups > 2*DefaultBatch {
		t.Errorf("%d duplicates after one restart, want at most %d", dups, 2*DefaultBatch)
	}
}

// TestCancel: a cancelled context ends both with ctx.Err(), values held
// in flight stay in the channel, and what In committed stays acknowledged.
func TestCancel(t *testing.T) {
	srv := startServer(t)
	_, js := connect(t, srv.url())
	p := newPipeline(t, "raw", js, jetstream.MemoryStorage, 64)
	for i := uint64(0); i < 10; i++ {
		if err := p.a.send(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []func(ctx context.Context) error{
		func(ctx context.Context) error { return Out(ctx, p.nameA, js, p.subject) },
		func(ctx context.Context) error { return In(ctx, p.cons, p.nameB) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := f(ctx)
		cancel()
		if err != context.DeadlineExceeded {
			t.Fatalf("with the context done: %v, want context.DeadlineExceeded itself", err)
		}
	}
	// Out published the ten values and released them; In committed them;
	// neither saw a marker, and B is open.
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	for i := uint64(0); i < 10; i++ {
		seq, err := p.b.recv(rctx, i)
		if err != nil || seq != i {
			t.Fatalf("B: %d, %v; want %d", seq, err, i)
		}
	}
	if n := p.a.r.Len(); n != 0 {
		t.Errorf("A still holds %d values", n)
	}
	ci, err := p.cons.Info(context.Background())
	if err != nil || ci.AckFloor.Stream != 10 || ci.NumAckPending != 0 {
		t.Fatalf("consumer: %+v, %v; want all ten acknowledged", ci, err)
	}
}

// TestConsumerLimits: In works with the tightest consumer limits.
func TestConsumerLimits(t *testing.T) {
	srv := startServer(t)
	_, js := connect(t, srv.url())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newPipeline(t, "bytes", js, jetstream.MemoryStorage, 64)
	cons, err := p.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:           "tight",
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           time.Second,
		MaxAckPending:     1,
		MaxRequestBatch:   3,
		MaxRequestExpires: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	if err := waitErr(t, "producer", p.produce(ctx, n), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := Out(ctx, p.nameA, js, p.subject); err != nil {
		t.Fatal(err)
	}
	res := p.consume(ctx, n, nil)
	var reported errorLog
	if err := In(ctx, cons, p.nameB, WithErrorHandler(reported.add)); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, res, time.Minute)
	if r.err != nil || r.total != n || r.inversions != 0 {
		t.Fatalf("B got %d values, %d out of order, %v; want %d in order", r.total, r.inversions, r.err, n)
	}
	if errs := reported.all(); len(errs) > 0 {
		t.Errorf("errors reported: %v", errs)
	}
}

// TestOutAckTimeout: a subject that something listens on but JetStream
// does not store (a plain subscriber that never answers): no
// acknowledgement comes, so Out reports the ack timeout and publishes the
// same values again under the same IDs, releasing nothing.
func TestOutAckTimeout(t *testing.T) {
	srv := startServer(t)
	nc, js := connect(t, srv.url())
	name := testName(t)
	a := mkchan(t, "raw", name, 64)
	const n = 40
	for i := uint64(0); i < n; i++ {
		if err := a.send(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	ids := make(chan string, 1<<12)
	sub, err := nc.Subscribe("silent", func(m *nats.Msg) {
		select {
		case ids <- m.Header.Get(jetstream.MsgIDHeader):
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var timeouts atomic.Int64
	var c Counters
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = Out(ctx, name, js, "silent", WithWindow(16), WithAckTimeout(150*time.Millisecond), WithCounters(&c),
		WithErrorHandler(func(err error) {
			if errors.Is(err, errAckTimeout) {
				timeouts.Add(1)
			}
		}))
	if err != context.DeadlineExceeded {
		t.Fatalf("Out = %v, want context.DeadlineExceeded", err)
	}
	if k := timeouts.Load(); k < 2 {
		t.Errorf("%d ack timeouts reported in 1.5 s with a timeout of 150 ms", k)
	}
	if got := c.Values.Load(); got != 0 {
		t.Errorf("Out counted %d values released without an acknowledgement", got)
	}
	if got := a.r.Len(); got != n {
		t.Errorf("A holds %d values, want all %d", got, n)
	}
	// Every attempt published the window from the oldest value: the same
	// IDs, in order, again and again; nothing past the window.
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var first []string
	for more := true; more; {
		select {
		case id := <-ids:
			if len(first) < 16 {
				first = append(first, id)
			}
			seen[id]++
		default:
			more = false
		}
	}
	if len(seen) != 16 {
		t.Errorf("%d distinct message IDs published, want the window's 16", len(seen))
	}
	for i, id := range first {
		if !strings.HasSuffix(id, "-"+strconv.Itoa(i)) {
			t.Fatalf("message %d has ID %q, want position %d", i, id, i)
		}
	}
	for id, k := range seen {
		if k < 2 {
			t.Errorf("ID %s published %d times, want it published again after the timeout", id, k)
		}
	}
}
