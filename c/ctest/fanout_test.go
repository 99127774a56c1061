package ctest_test

// The fan-out topologies between C and Go: C receivers in a work queue
// among Go ones (every value returned exactly once overall), C and Go
// producers mixed into one, C broadcast subscribers next to Go ones (each
// gets every value in order), a DropOldest C subscriber that falls behind
// (one ELAGGED with the exact count, then intact values), and SIGKILLed C
// receivers: a work-queue holder whose value is rescued, a broadcast
// subscriber that stops gating its sender.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
)

// seqSet counts how often each seq was received, over all receivers.
type seqSet struct {
	mu  sync.Mutex
	got map[uint64]int
}

func newSeqSet() *seqSet { return &seqSet{got: map[uint64]int{}} }

func (s *seqSet) add(seqs ...uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range seqs {
		s.got[q]++
	}
}

// exactlyOnce checks that the set holds each seqOf(id, i), i < per, once,
// for every id, and nothing else.
func (s *seqSet) exactlyOnce(t *testing.T, ids []uint64, per int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	bad := 0
	for _, id := range ids {
		for i := range per {
			if n := s.got[seqOf(id, uint64(i))]; n != 1 {
				if bad < 10 {
					t.Errorf("producer %d value %d received %d times", id, i, n)
				}
				bad++
			}
		}
	}
	if len(s.got) != len(ids)*per {
		t.Errorf("%d distinct values received, want %d", len(s.got), len(ids)*per)
	}
	if bad > 0 {
		t.Fatalf("%d values not received exactly once", bad)
	}
}

// readSeqs reads the 8-byte seqs a C wqrecv peer wrote.
func readSeqs(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%8 != 0 {
		t.Fatalf("%s: %d bytes", path, len(b))
	}
	seqs := make([]uint64, len(b)/8)
	for i := range seqs {
		seqs[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return seqs
}

// goWorkers runs n Go work-queue receivers until the channel is closed;
// each checks its values are intact and each producer's in increasing
// order, and adds them to set. It returns how many each got.
func goWorkers(t *testing.T, name string, n int, set *seqSet) (wait func() []int) {
	ctx := ctxFor(t)
	counts := make([]int, n)
	var wg sync.WaitGroup
	ready := make(chan struct{}, n)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := shmchan.Open[rec](name)
			if err != nil {
				t.Error(err)
				ready <- struct{}{}
				return
			}
			defer ch.Close()
			var mine []uint64
			last := map[uint64]uint64{}
			v, err := ch.TryRecv() // take a consumer entry now
			ready <- struct{}{}
			for ; ; v, err = ch.Recv(ctx) {
				if errors.Is(err, shmchan.ErrEmpty) {
					continue
				}
				if errors.Is(err, shmchan.ErrClosed) {
					break
				}
				if err != nil {
					t.Errorf("Go worker %d: %v", w, err)
					return
				}
				id, i := v.Seq>>40, v.Seq&(1<<40-1)
				if !v.ok() {
					t.Errorf("Go worker %d: torn value %+v", w, v)
					return
				}
				if l, ok := last[id]; ok && i <= l {
					t.Errorf("Go worker %d: producer %d's value %d after %d", w, id, i, l)
					return
				}
				last[id] = i
				mine = append(mine, v.Seq)
			}
			counts[w] = len(mine)
			set.add(mine...)
		}()
	}
	for range n {
		<-ready
	}
	return func() []int { wg.Wait(); return counts }
}

// cWorkers starts n C work-queue receivers; their wait adds what each got
// to set and returns the counts.
func cWorkers(t *testing.T, name string, n int, set *seqSet) (wait func() []int) {
	var ps []*peer
	var files []string
	for w := range n {
		f := filepath.Join(t.TempDir(), fmt.Sprintf("wq%d", w))
		p := startPeer(t, "wqrecv", "name="+name, "kind=rec", "out="+f)
		p.ExpectPrefix("ready")
		ps, files = append(ps, p), append(files, f)
	}
	return func() []int {
		var counts []int
		for w, p := range ps {
			rest := p.Finish()
			seqs := readSeqs(t, files[w])
			if len(rest) != 1 || rest[0] != fmt.Sprint("received ", len(seqs)) {
				t.Fatalf("C worker %d: %q, and %d values in its file", w, rest, len(seqs))
			}
			set.add(seqs...)
			counts = append(counts, len(seqs))
		}
		return counts
	}
}

// TestWorkQueueCAmongGo: two C and two Go receivers share a work queue Go
// created, fed by one Go sender: every value is received exactly once,
// by someone, and the C receivers take part.
func TestWorkQueueCAmongGo(t *testing.T) {
	for _, w := range []string{"futex", "mq"} {
		t.Run(w, func(t *testing.T) { testWorkQueueCAmongGo(t, w) })
	}
}

func testWorkQueueCAmongGo(t *testing.T, w string) {
	n := streamSize(w)
	name, tx := testChan[rec](t, shmchan.WithMultiConsumer(), shmchan.WithConsumers(8), shmchan.WithCapacity(256), waitOpt(w))
	set := newSeqSet()
	cWait := cWorkers(t, name, 2, set)
	goWait := goWorkers(t, name, 2, set)
	ctx := ctxFor(t)
	for i := range n {
		if err := tx.Send(ctx, mkrec(seqOf(1, uint64(i)))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := tx.CloseSend(); err != nil {
		t.Fatal(err)
	}
	cCounts, goCounts := cWait(), goWait()
	set.exactlyOnce(t, []uint64{1}, n)
	t.Logf("%d values: C receivers got %v, Go receivers %v", n, cCounts, goCounts)
	for w, k := range cCounts {
		if k == 0 {
			t.Errorf("C receiver %d got nothing", w)
		}
	}
	if st := tx.Stats(); st.Received != uint64(n) || st.Abandoned != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWorkQueueMixedProducers: a work queue a C process created, two C and
// two Go producers, one C and two Go receivers; a Go handle closes it once
// every producer is done.
func TestWorkQueueMixedProducers(t *testing.T) {
	per := count(200_000) / 4
	name := testName(t)
	first := startPeer(t, "send", "name="+name, "create=wq", "multi=1", "producers=8", "consumers=8", "cap=512",
		"kind=rec", fmt.Sprint("fp=", recFingerprint(t)), "id=1", fmt.Sprint("count=", per))
	first.ExpectPrefix("ready")
	ctl, err := shmchan.Open[rec](name, shmchan.WithMultiConsumer(), shmchan.WithMultiProducer(), shmchan.WithProducers(8))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	set := newSeqSet()
	cWait := cWorkers(t, name, 1, set)
	goWait := goWorkers(t, name, 2, set)
	second := startPeer(t, "send", "name="+name, "kind=rec", "id=2", fmt.Sprint("count=", per))
	wg := goProducers(t, name, []uint64{3, 4}, per)
	for _, p := range []*peer{first, second} {
		p.ExpectPrefix("done")
		p.Finish()
	}
	wg.Wait()
	if err := ctl.CloseSend(); err != nil {
		t.Fatal(err)
	}
	cCounts, goCounts := cWait(), goWait()
	set.exactlyOnce(t, []uint64{1, 2, 3, 4}, per)
	t.Logf("%d values from 2 C and 2 Go producers: C receiver got %v, Go receivers %v", 4*per, cCounts, goCounts)
	if st := ctl.Stats(); st.Received != uint64(4*per) || st.Abandoned != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBroadcastCSubscribers: a broadcast (WaitForSlowest) with two C and
// two Go subscribers, fed by a Go and a C producer: every subscriber gets
// every value, each producer's in order.
func TestBroadcastCSubscribers(t *testing.T) {
	for _, w := range []string{"futex", "mq"} {
		t.Run(w, func(t *testing.T) { testBroadcastCSubscribers(t, w) })
	}
}

func testBroadcastCSubscribers(t *testing.T, w string) {
	// WaitForSlowest with doorbells makes a message-queue system call or
	// two per value and subscriber (about 11k values/s here): fewer values.
	per := count(100_000) / 2
	if w == "mq" {
		per = count(10_000) / 2
	}
	name := testName(t)
	ctl, err := shmchan.Create[rec](name, shmchan.WithBroadcast(shmchan.WaitForSlowest), shmchan.WithMultiProducer(),
		shmchan.WithProducers(4), shmchan.WithConsumers(8), shmchan.WithCapacity(256), waitOpt(w))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	var subs []*peer
	for range 2 {
		p := startPeer(t, "recv", "name="+name, "kind=rec", fmt.Sprint("total=", 2*per), "close=1")
		p.ExpectPrefix("ready")
		subs = append(subs, p)
	}
	ctx := ctxFor(t)
	var gwg sync.WaitGroup
	ready := make(chan struct{}, 2)
	for s := range 2 {
		gwg.Add(1)
		go func() {
			defer gwg.Done()
			ch, err := shmchan.Open[rec](name)
			if err != nil {
				t.Error(err)
				ready <- struct{}{}
				return
			}
			defer ch.Close()
			_, err = ch.TryRecv() // join now
			ready <- struct{}{}
			if !errors.Is(err, shmchan.ErrEmpty) {
				t.Errorf("Go subscriber %d joining: %v", s, err)
				return
			}
			next := map[uint64]uint64{}
			for k := 0; ; k++ {
				v, err := ch.Recv(ctx)
				if errors.Is(err, shmchan.ErrClosed) {
					if k != 2*per {
						t.Errorf("Go subscriber %d: closed after %d values, want %d", s, k, 2*per)
					}
					return
				}
				if err != nil {
					t.Errorf("Go subscriber %d: %v", s, err)
					return
				}
				id, i := v.Seq>>40, v.Seq&(1<<40-1)
				if !v.ok() || (id != 1 && id != 2) || i != next[id] {
					t.Errorf("Go subscriber %d: %+v, producer %d expects %d", s, v, id, next[id])
					return
				}
				next[id]++
			}
		}()
	}
	<-ready
	<-ready
	cp := startPeer(t, "send", "name="+name, "kind=rec", "id=1", fmt.Sprint("count=", per))
	wg := goProducers(t, name, []uint64{2}, per)
	cp.ExpectPrefix("done")
	cp.Finish()
	wg.Wait()
	if err := ctl.CloseSend(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("producer 1 %d\nproducer 2 %d\nreceived %d", per, per, 2*per)
	for i, p := range subs {
		if got := strings.Join(p.Finish(), "\n"); got != want {
			t.Errorf("C subscriber %d reported\n%s\nwant\n%s", i, got, want)
		}
	}
	gwg.Wait()
}

// bcastPeer starts a C "bcast" subscriber, which receives in phases on
// each line written to it.
type bcastPeer struct {
	*peer
	in io.WriteCloser
	t  testing.TB
}

func startBcast(t *testing.T, args ...string) *bcastPeer {
	t.Helper()
	cmd := exec.Command(peerBinary(t), append([]string{"bcast"}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startPeerCmd(t, cmd)
	t.Cleanup(func() { in.Close() })
	p.ExpectPrefix("ready")
	return &bcastPeer{p, in, t}
}

// phase makes the subscriber receive what is there and returns its lines.
func (b *bcastPeer) phase() []string {
	b.t.Helper()
	if _, err := io.WriteString(b.in, "go\n"); err != nil {
		b.t.Fatal(err)
	}
	var lines []string
	for {
		l := b.ExpectPrefix("")
		if l == "idle" || l == "closed" {
			return append(lines, l)
		}
		lines = append(lines, l)
	}
}

// TestBroadcastDropOldestLag: a DropOldest C subscriber that does not read
// while a Go sender sends more than a ring: its next receive is one
// ELAGGED with exactly the number it lost, then the oldest intact values
// in order; twice; then the close.
func TestBroadcastDropOldestLag(t *testing.T) {
	const capacity = 64
	name, tx := testChan[rec](t, shmchan.WithBroadcast(shmchan.DropOldest), shmchan.WithCapacity(capacity))
	sub := startBcast(t, "name="+name, "kind=rec")
	sent := uint64(0)
	send := func(n int) {
		for range n {
			if err := tx.TrySend(mkrec(sent)); err != nil { // DropOldest never waits
				t.Fatalf("send %d: %v", sent, err)
			}
			sent++
		}
	}
	expect := func(lines []string, lag uint64, from uint64) {
		t.Helper()
		var want []string
		if lag > 0 {
			want = append(want, fmt.Sprint("lagged ", lag))
		}
		for s := from; s < sent; s++ {
			want = append(want, fmt.Sprint("got ", s))
		}
		want = append(want, "idle")
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("C subscriber:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	}
	send(10)
	expect(sub.phase(), 0, 0) // within the ring: no lag
	send(1000)
	expect(sub.phase(), 1000-capacity, sent-capacity)
	send(capacity) // exactly a ring: nothing lost
	expect(sub.phase(), 0, sent-capacity)
	send(capacity + 1)
	expect(sub.phase(), 1, sent-capacity)
	if st := tx.Stats(); st.Closed {
		t.Fatal("closed already")
	}
	if err := tx.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if l := sub.phase(); strings.Join(l, " ") != "closed" {
		t.Fatalf("after the close: %q", l)
	}
	sub.Finish()
	lagged := readLagged(t, name)
	if want := uint64(1000 - capacity + 1); lagged != want {
		t.Fatalf("lagged counter %d, want %d", lagged, want)
	}
}

// readLagged reads the region's lagged word (FORMAT.md: offset 416).
func readLagged(t *testing.T, name string) uint64 {
	t.Helper()
	f, err := os.Open(shmPath(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, 416); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b)
}

// TestBroadcastDropOldestSlow: a C sender much faster than a C and a Go
// DropOldest subscriber, with []byte values whose every byte is checked:
// each subscriber gets intact values, exactly the next expected one each
// time, and what it received plus what it was told it missed is exactly
// what was sent (a copy torn by a sender lapping it is never returned).
func TestBroadcastDropOldestSlow(t *testing.T) {
	n := count(200_000)
	name := testName(t)
	ctl, err := shmchan.Create[[]byte](name, shmchan.WithBroadcast(shmchan.DropOldest), shmchan.WithCapacity(64),
		shmchan.WithMaxMessageSize(64), shmchan.WithMultiProducer(), shmchan.WithProducers(2), shmchan.WithConsumers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	sub := startPeer(t, "bcastslow", "name="+name, "kind=bytes", "id=1", "every=50", "pause_us=200")
	sub.ExpectPrefix("ready")
	gosub, err := shmchan.Open[[]byte](name)
	if err != nil {
		t.Fatal(err)
	}
	defer gosub.Close()
	if _, err := gosub.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
		t.Fatalf("Go subscriber joining: %v", err)
	}
	tx := startPeer(t, "send", "name="+name, "kind=bytes", "id=1", fmt.Sprint("count=", n), "close=1", "every=40", "pause_us=100")
	ctx := ctxFor(t)
	var got, missed, lags uint64
	next := uint64(0)
	for k := 0; ; k++ {
		v, err := gosub.Recv(ctx)
		var lag *shmchan.LagError
		if errors.As(err, &lag) {
			next += lag.Missed
			missed += lag.Missed
			lags++
			continue
		}
		if errors.Is(err, shmchan.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seq, ok := decodeBytes(v)
		if !ok || seq != seqOf(1, next) {
			t.Fatalf("Go subscriber: value %x, want seq %d", v, next)
		}
		next++
		got++
		if k%50 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	tx.ExpectPrefix("done")
	tx.Finish()
	if got+missed != uint64(n) {
		t.Errorf("Go subscriber: %d received + %d missed, %d sent", got, missed, n)
	}
	rest := sub.Finish()
	f := strings.Fields(strings.Join(rest, " "))
	if len(f) != 6 || f[0] != "received" {
		t.Fatalf("C subscriber: %q", rest)
	}
	cGot, _ := strconv.ParseUint(f[1], 10, 64)
	cMissed, _ := strconv.ParseUint(f[3], 10, 64)
	if cGot+cMissed != uint64(n) {
		t.Errorf("C subscriber: %d received + %d missed, %d sent", cGot, cMissed, n)
	}
	t.Logf("%d values; C subscriber: %d received, %d missed in %s lags; Go subscriber: %d received, %d missed in %d lags",
		n, cGot, cMissed, f[5], got, missed, lags)
	if cMissed == 0 && missed == 0 {
		t.Log("no subscriber fell behind this time: the lag path went untested")
	}
}

// TestKillCWorkQueueHolder: a C receiver holds a value (claimed, not
// returned) and is killed; another receiver, Go or C, rescues it: every
// value still arrives exactly once. While the holder lives, nobody takes
// its value.
func TestKillCWorkQueueHolder(t *testing.T) {
	for _, rescuer := range []string{"go", "c"} {
		t.Run(rescuer, func(t *testing.T) {
			name, tx := testChan[rec](t, shmchan.WithMultiConsumer(), shmchan.WithConsumers(4), shmchan.WithCapacity(16))
			ctx := ctxFor(t)
			if err := tx.Send(ctx, mkrec(seqOf(1, 0))); err != nil {
				t.Fatal(err)
			}
			holder := startPeer(t, "wqhold", "name="+name)
			if l := holder.ExpectPrefix("holding"); l != "holding 16" {
				t.Fatalf("C holder: %q", l)
			}
			var recv func(ctx context.Context) (uint64, error)
			if rescuer == "go" {
				rx, err := shmchan.Open[rec](name)
				if err != nil {
					t.Fatal(err)
				}
				defer rx.Close()
				recv = func(ctx context.Context) (uint64, error) {
					v, err := rx.Recv(ctx)
					if err == nil && !v.ok() {
						t.Fatalf("torn %+v", v)
					}
					return v.Seq, err
				}
			} else {
				rx := startPeer(t, "report", "name="+name, "kind=rec")
				rx.ExpectPrefix("ready")
				recv = func(ctx context.Context) (uint64, error) {
					select {
					case l := <-rx.Lines:
						v, err := strconv.ParseUint(strings.TrimPrefix(l, "got "), 10, 64)
						if err != nil {
							t.Fatalf("C rescuer: %q", l)
						}
						return v, nil
					case <-ctx.Done():
						return 0, ctx.Err()
					}
				}
			}
			for i := 1; i < 10; i++ {
				if err := tx.Send(ctx, mkrec(seqOf(1, uint64(i)))); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i < 10; i++ {
				if v, err := recv(ctx); err != nil || v != seqOf(1, uint64(i)) {
					t.Fatalf("value %d: %d, %v", i, v, err)
				}
			}
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			if v, err := recv(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("with the holder alive: %d, %v; want nothing", v, err)
			}
			holder.Kill()
			start := time.Now()
			if v, err := recv(ctx); err != nil || v != seqOf(1, 0) {
				t.Fatalf("after the kill: %d, %v; want the held value", v, err)
			}
			t.Logf("the dead C holder's value was rescued %v after the kill", time.Since(start))
			// The dead holder's entry is free, the queue goes on.
			if err := tx.Send(ctx, mkrec(seqOf(1, 10))); err != nil {
				t.Fatal(err)
			}
			if v, err := recv(ctx); err != nil || v != seqOf(1, 10) {
				t.Fatalf("after the rescue: %d, %v", v, err)
			}
			if st := tx.Stats(); st.Received != 11 {
				t.Fatalf("head %d, want 11", st.Received)
			}
		})
	}
}

// TestKillCBroadcastSubscriber: a WaitForSlowest C subscriber that never
// reads gates a Go sender once the ring is full; killed, it stops gating.
func TestKillCBroadcastSubscriber(t *testing.T) {
	name, tx := testChan[rec](t, shmchan.WithBroadcast(shmchan.WaitForSlowest), shmchan.WithCapacity(8))
	sub := startPeer(t, "hold", "name="+name, "role=recv")
	sub.ExpectPrefix("holding")
	ctx := ctxFor(t)
	for i := range 8 {
		if err := tx.Send(ctx, mkrec(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := tx.Send(short, mkrec(8)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the slowest subscriber alive and a ring behind: %v, want to wait", err)
	}
	sub.Kill()
	start := time.Now()
	if err := tx.Send(ctx, mkrec(8)); err != nil {
		t.Fatal(err)
	}
	t.Logf("the dead C subscriber stopped gating %v after the kill", time.Since(start))
}

// TestWorkQueueDeadAfterConsume: a receiver that died after marking its
// value consumed but before moving head, in a ring of one slot: nothing
// is left to claim and the full ring blocks the sender; a C receiver moves
// head over the consumed position (FORMAT.md, work queue step 1) and the
// queue goes on.
func TestWorkQueueDeadAfterConsume(t *testing.T) {
	name, tx := testChan[rec](t, shmchan.WithMultiConsumer(), shmchan.WithConsumers(4), shmchan.WithCapacity(1))
	ctx := ctxFor(t)
	if err := tx.Send(ctx, mkrec(0)); err != nil {
		t.Fatal(err)
	}
	stale := startPeer(t, "wqstale", "name="+name)
	if l := stale.ExpectPrefix("consumed "); l != "consumed 0" {
		t.Fatalf("C: %q", l)
	}
	stale.Finish()
	if st := tx.Stats(); st.Received != 0 {
		t.Fatalf("head %d after the stale consume, want 0", st.Received)
	}
	rx := startPeer(t, "report", "name="+name, "kind=rec")
	rx.ExpectPrefix("ready")
	wedge, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := uint64(1); i <= 3; i++ {
		if err := tx.Send(wedge, mkrec(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if l := rx.ExpectPrefix("got "); l != fmt.Sprint("got ", i) {
			t.Fatalf("C receiver: %q, want %d", l, i)
		}
	}
}

// TestWorkQueueTakeoverWhileRescuing: a C receiver takes over the entry of
// a dead holder while the rescue lock is held elsewhere. It must neither
// withdraw the dead holder's claim without the lock (the value would be
// lost: no claim left to rescue, no receiver holding it) nor take it
// unlocked; once the lock is free it resumes the value.
func TestWorkQueueTakeoverWhileRescuing(t *testing.T) {
	name, tx := testChan[rec](t, shmchan.WithMultiConsumer(), shmchan.WithConsumers(2), shmchan.WithCapacity(4))
	ctx := ctxFor(t)
	if err := tx.Send(ctx, mkrec(0)); err != nil {
		t.Fatal(err)
	}
	holder := startPeer(t, "wqhold", "name="+name)
	holder.ExpectPrefix("holding")
	lock := startPeer(t, "lock", "name="+name, fmt.Sprint("off=", uint64(1)<<40+1<<24))
	lock.ExpectPrefix("locked")
	holder.Kill()
	rx := startPeer(t, "report", "name="+name, "kind=rec") // takes the dead holder's entry, the first
	rx.ExpectPrefix("ready")
	select {
	case l := <-rx.Lines:
		t.Fatalf("with the rescue lock held, the C receiver printed %q", l)
	case <-time.After(200 * time.Millisecond):
	}
	lock.Kill()
	if l := rx.ExpectPrefix("got "); l != "got 0" {
		t.Fatalf("C receiver after the lock was freed: %q, want the dead holder's value", l)
	}
	if err := tx.Send(ctx, mkrec(1)); err != nil {
		t.Fatal(err)
	}
	if l := rx.ExpectPrefix("got "); l != "got 1" {
		t.Fatalf("C receiver: %q", l)
	}
}
