package natsbridge

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestOutCrash SIGKILLs the Out process at random points and starts it
// again: the stream holds every value exactly once, in order, then the
// marker.
func TestOutCrash(t *testing.T) {
	rounds, n := 20, uint64(100_000)
	if testing.Short() {
		rounds, n = 5, 20_000
	}
	srv := startServer(t)
	_, js := connect(t, srv.url())
	name := testName(t)
	a := mkchan(t, "raw", name, 1<<16)
	stream := mkstream(t, js, "OUTCRASH", "outcrash", jetstream.FileStorage)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod := make(chan error, 1)
	go func() {
		for i := uint64(0); i < n; i++ {
			if err := a.send(ctx, i); err != nil {
				prod <- err
				return
			}
		}
		prod <- a.closeSend()
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	var last uint64
	var progress []uint64
	for round := 0; round < rounds; round++ {
		h := spawn(t, "out", name, srv.url(), "outcrash")
		h.Expect("ready")
		time.Sleep(time.Duration(rng.IntN(120_000)) * time.Microsecond)
		h.Kill()
		si, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		progress = append(progress, si.State.Msgs-last)
		last = si.State.Msgs
		if last >= n {
			break // a fast machine finished the stream: the kills so far fell mid-stream
		}
	}
	t.Logf("after %d kills the stream holds %d of %d values; values each run added: %v", len(progress), last, n, progress)
	if mid := len(progress) - 1; last == 0 || mid < rounds/2 {
		t.Errorf("only %d kills fell mid-stream (%d of %d values published): the test tested too little", mid, last, n)
	}
	h := spawn(t, "out", name, srv.url(), "outcrash")
	if err := h.Wait(); err != nil {
		t.Fatalf("last Out: %v", err)
	}
	if err := waitErr(t, "producer", prod, time.Minute); err != nil {
		t.Fatal(err)
	}
	msgs := readStream(t, stream)
	if uint64(len(msgs)) != n+1 {
		t.Errorf("stream holds %d messages, want %d values and the marker", len(msgs), n)
	}
	for i, m := range msgs {
		if uint64(i) == n {
			if m.header.Get(HeaderClose) == "" {
				t.Fatalf("message %d is not the close marker: %v", i, m.header)
			}
			continue
		}
		if uint64(i) > n {
			t.Fatalf("message %d after the marker: %v", i, m.header)
		}
		pos, err := strconv.ParseUint(m.header.Get(HeaderPos), 10, 64)
		if err != nil || pos != uint64(i) || len(m.data) != 16 {
			t.Fatalf("message %d: position %q (%v), %d bytes", i, m.header.Get(HeaderPos), err, len(m.data))
		}
		v := rec{Seq: binary.LittleEndian.Uint64(m.data), Sum: binary.LittleEndian.Uint64(m.data[8:])}
		if v != mkrec(uint64(i)) {
			t.Fatalf("message %d holds %+v", i, v)
		}
	}
}

// TestInCrash SIGKILLs the In process at random points and starts it
// again: B gets every value; the duplicates are values committed just
// before a kill, at most a batch or two per kill.
func TestInCrash(t *testing.T) {
	rounds, n := 10, uint64(100_000)
	if testing.Short() {
		rounds, n = 4, 20_000
	}
	const batch = 256
	srv := startServer(t)
	_, js := connect(t, srv.url())
	p := newPipeline(t, "raw", js, jetstream.FileStorage, 1<<14)
	p.cons = mkconsumer(t, p.stream, "in", time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Fill the stream first.
	prod := p.produce(ctx, n)
	if err := Out(ctx, p.nameA, js, p.subject); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, "producer", prod, time.Minute); err != nil {
		t.Fatal(err)
	}
	res := p.consume(ctx, n, nil)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	stream := p.stream.CachedInfo().Config.Name
	for round := 0; round < rounds; round++ {
		h := spawn(t, "in", p.nameB, srv.url(), stream, "in", batch)
		h.Expect("ready")
		time.Sleep(time.Duration(20_000+rng.IntN(200_000)) * time.Microsecond)
		h.Kill()
	}
	ci, err := p.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d kills: ack floor %d of %d messages, %d ack pending", rounds, ci.AckFloor.Stream, n+1, ci.NumAckPending)
	if ci.AckFloor.Stream == 0 || ci.AckFloor.Stream >= n {
		t.Errorf("the kills did not fall mid-stream: the test tested nothing")
	}
	h := spawn(t, "in", p.nameB, srv.url(), stream, "in", batch)
	if err := h.Wait(); err != nil {
		t.Fatalf("last In: %v", err)
	}
	r := waitResult(t, res, time.Minute)
	if r.err != nil {
		t.Fatal(r.err)
	}
	dups := 0
	for i, c := range r.count {
		if c == 0 {
			t.Fatalf("value %d lost", i)
		}
		dups += c - 1
	}
	t.Logf("B got %d values: %d duplicates over %d kills, %d out of order", r.total, dups, rounds, r.inversions)
	if limit := rounds * 2 * batch; dups > limit {
		t.Errorf("%d duplicates, more than the window allows (%d kills × 2 batches of %d)", dups, rounds, batch)
	}
	if ci, err := p.cons.Info(ctx); err != nil || ci.NumAckPending != 0 || ci.AckFloor.Stream != n+1 {
		t.Errorf("consumer at the end: %+v, %v", ci, err)
	}
}
