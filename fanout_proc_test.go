package shmchan

// Cross-process tests of the fan-out topologies (work queue, broadcast):
// receiver and sender processes are this test binary re-run as helpers
// (modes "fan-recv" and "fan-send", in runHelper's fan-out block), killed
// with SIGKILL and stopped with SIGSTOP where that is the point. The
// in-process ones are in fanout_test.go.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan/internal/testutil"
)

// Helper processes.

// fanRecv is helper mode fan-recv: name wait how out stuck pause gofile.
// It opens the channel (with wait mode wait, and a stuck check of stuck
// microseconds if not 0), joins with a TryRecv, prints "joined" (or "busy",
// and exits, if every receiver entry is held), then receives with how
// (recv, batch, func, try, all) until ErrClosed, printing "P S" for each
// value, "lag N" for each *LagError, and "closed" at the end. out is raw
// (each line written at once: a SIGKILL loses nothing printed) or buf
// (buffered, flushed at exit: for throughput runs). After pause values (0:
// never) it prints "paused" and waits for gofile to exist.
func fanRecv(args []string) int {
	arg, num := testutil.Args(args).Str, testutil.Args(args).Num
	var w io.Writer = os.Stdout
	var bw *bufio.Writer
	if arg(3) == "buf" {
		bw = bufio.NewWriterSize(os.Stdout, 64<<10)
		w = bw
	}
	out := func(format string, a ...any) {
		fmt.Fprintf(w, format+"\n", a...)
	}
	finish := func(code int) int {
		if bw != nil {
			bw.Flush()
		}
		return code
	}
	failed := func(err error) int {
		out("error %v", err)
		fmt.Fprintf(os.Stderr, "helper fan-recv: %v\n", err)
		return finish(1)
	}
	opts := []Option{waitOpt(arg(1))}
	if d := num(4); d > 0 {
		opts = append(opts, withStuckCheck(time.Duration(d)*time.Microsecond))
	}
	c, err := Open[mrec](arg(0), opts...)
	if err != nil {
		return failed(err)
	}
	defer c.Close()
	ctx := context.Background()
	pause, gofile := num(5), arg(6)
	got := uint64(0)
	// handle reports one receive's outcome; false: stop (closed or failed).
	code := 0
	handle := func(v mrec, err error) bool {
		var lag *LagError
		switch {
		case err == nil:
			if !v.ok() {
				code = failed(fmt.Errorf("torn value %+v", v))
				return false
			}
			out("%d %d", v.P, v.Seq)
			if got++; pause > 0 && got == pause {
				out("paused")
				if bw != nil {
					bw.Flush()
				}
				waitFile(gofile, 200*time.Microsecond)
			}
			return true
		case errors.As(err, &lag):
			out("lag %d", lag.Missed)
			return true
		case errors.Is(err, ErrClosed):
			out("closed")
			return false
		}
		code = failed(err)
		return false
	}
	v, err := c.TryRecv()
	if errors.Is(err, ErrBusy) {
		out("busy")
		return finish(0)
	}
	if !errors.Is(err, ErrEmpty) && !handle(v, err) {
		return finish(code)
	}
	out("joined")
	if bw != nil {
		bw.Flush()
	}
	switch arg(2) {
	case "all":
		for v, err := range c.All(ctx) {
			if !handle(v, err) {
				return finish(code)
			}
		}
		handle(mrec{}, ErrClosed)
		return finish(code)
	case "batch":
		var buf [8]mrec
		for {
			n, err := c.RecvBatch(ctx, buf[:])
			for _, v := range buf[:n] {
				if !handle(v, nil) {
					return finish(code)
				}
			}
			if err != nil && !handle(mrec{}, err) {
				return finish(code)
			}
		}
	}
	for {
		var v mrec
		var err error
		switch arg(2) {
		case "func":
			err = c.RecvFunc(ctx, func(p *mrec) { v = *p })
		case "try":
			if v, err = c.TryRecv(); errors.Is(err, ErrEmpty) {
				v, err = c.Recv(ctx)
			}
		default:
			v, err = c.Recv(ctx)
		}
		if !handle(v, err) {
			return finish(code)
		}
	}
}

// fanSend is helper mode fan-send: name wait id how count out stuck gofile.
// It opens the channel, takes a sender entry, prints "ready", waits for
// gofile ("-": at once), then sends id/0, id/1, ... (count of them; 0: for
// ever) with how (send, batch, func, try; see mpscProduce). With out raw it
// prints the sequence number of the last value of each send call that
// returned (so every value up to it was committed); it prints "done" at the
// end, or "closed" if the channel was closed first.
func fanSend(args []string) int {
	arg, num := testutil.Args(args).Str, testutil.Args(args).Num
	failed := func(err error) int {
		say("error %v", err)
		fmt.Fprintf(os.Stderr, "helper fan-send: %v\n", err)
		return 1
	}
	opts := []Option{waitOpt(arg(1))}
	if d := num(6); d > 0 {
		opts = append(opts, withStuckCheck(time.Duration(d)*time.Microsecond))
	}
	c, err := Open[mrec](arg(0), opts...)
	if err != nil {
		return failed(err)
	}
	defer c.Close()
	s, err := c.Sender() // take the entry now
	if err != nil {
		return failed(err)
	}
	s.Release()
	say("ready")
	if g := arg(7); g != "-" && g != "" {
		waitFile(g, 100*time.Microsecond)
	}
	id, how, count, raw := num(2), arg(3), num(4), arg(5) == "raw"
	if count == 0 {
		count = 1 << 62
	}
	step := uint64(1)
	if how == "batch" {
		step = mpscBatch
	}
	ctx := context.Background()
	for i := uint64(0); i < count; i += step {
		k := min(step, count-i)
		n, err := mpscProduce(ctx, c, id, i, k, how)
		if raw && n > 0 {
			say("%d", i+n-1)
		}
		if errors.Is(err, ErrClosed) {
			say("closed")
			return 0
		}
		if err != nil {
			return failed(err)
		}
	}
	say("done")
	return 0
}

// The test side.

// fanProc is a running helper whose output lines are collected as they
// come, so it never blocks on a full pipe.
type fanProc struct {
	h     *helper
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startFan(t testing.TB, mode string, args ...any) *fanProc {
	t.Helper()
	p := &fanProc{h: spawn(t, mode, args...), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for l := range p.h.Lines {
			p.mu.Lock()
			p.lines = append(p.lines, l)
			p.mu.Unlock()
		}
	}()
	return p
}

// has reports whether the helper printed line.
func (p *fanProc) has(line string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		if p.lines[i] == line {
			return true
		}
	}
	return false
}

// await waits until the helper prints line (failing if it exits first, or
// after a minute).
func (p *fanProc) await(t testing.TB, line string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !p.has(line) {
		select {
		case <-p.done:
			if p.has(line) {
				return
			}
			t.Fatalf("helper exited (%v) before printing %q; it printed %q", p.h.Wait(), line, p.tail())
		case <-time.After(200 * time.Microsecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper did not print %q within a minute; it printed %q", line, p.tail())
		}
	}
}

func (p *fanProc) tail() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines[max(0, len(p.lines)-5):]
}

// finish waits (up to d) for the helper to exit by itself and returns its
// lines and exit error.
func (p *fanProc) finish(t testing.TB, d time.Duration) ([]string, error) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("helper still running after %v: a hang; it printed %q", d, p.tail())
	}
	err := p.h.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines, err
}

// kill SIGKILLs the helper and returns every line it printed.
func (p *fanProc) kill() []string {
	p.h.Kill()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines
}

// fanKey names one value: its sender and sequence number.
type fanKey struct{ p, seq uint64 }

// recvLog is what one receiver process printed, parsed.
type recvLog struct {
	vals   []fanKey
	lags   []uint64
	closed bool
	joined bool
}

func parseRecv(t testing.TB, lines []string) recvLog {
	t.Helper()
	var l recvLog
	for _, s := range lines {
		var a, b uint64
		switch {
		case s == "joined":
			l.joined = true
		case s == "closed":
			l.closed = true
		case s == "paused":
		case strings.HasPrefix(s, "lag "):
			n, err := strconv.ParseUint(s[4:], 10, 64)
			if err != nil {
				t.Fatalf("receiver printed %q", s)
			}
			l.lags = append(l.lags, n)
		default:
			if _, err := fmt.Sscanf(s, "%d %d", &a, &b); err != nil {
				t.Fatalf("receiver printed %q", s)
			}
			if l.closed {
				t.Fatalf("receiver printed %q after closed", s)
			}
			l.vals = append(l.vals, fanKey{a, b})
		}
	}
	return l
}

// inversions counts the values that come after a later value of the same
// sender (0 when per-sender order holds).
func (l recvLog) inversions() int {
	top := map[uint64]uint64{}
	seen := map[uint64]bool{}
	n := 0
	for _, k := range l.vals {
		if seen[k.p] && k.seq <= top[k.p] {
			n++
			continue
		}
		seen[k.p], top[k.p] = true, k.seq
	}
	return n
}

// union adds a receiver's values to all, failing on a duplicate.
func union(t testing.TB, all map[fanKey]bool, vals []fanKey, who string) {
	t.Helper()
	for _, k := range vals {
		if all[k] {
			t.Fatalf("%s: value %d/%d delivered twice", who, k.p, k.seq)
		}
		all[k] = true
	}
}

func fanCount(normal, short uint64) uint64 {
	if testing.Short() || raceEnabled {
		return short
	}
	return normal
}

// fanStuck is the stuck check of the fan-out process tests, in
// microseconds (5 ms).
const fanStuck = 5000

// TestWorkQueueProcesses: one sender process into four receiver processes
// (SPMC), and three into three (MPMC), 400k values a run (40k with -short
// or -race): each value is delivered exactly once (the union is complete,
// with no duplicate), in its sender's order within each receiver, and
// every receiver gets ErrClosed after CloseSend.
func TestWorkQueueProcesses(t *testing.T) {
	for _, tc := range []struct {
		senders, receivers int
		wait               string
	}{{1, 4, "futex"}, {3, 3, "futex"}, {3, 3, "mq"}} {
		t.Run(fmt.Sprintf("%dto%d-%s", tc.senders, tc.receivers, tc.wait), func(t *testing.T) {
			if tc.wait == "mq" && (testing.Short() || raceEnabled) {
				t.Skip("futex covers the protocol; the mq doorbells are covered by the close and kill tests")
			}
			total := fanCount(400_002, 40_002)
			per := total / uint64(tc.senders)
			name := testName(t)
			opts := []Option{WithMultiConsumer(), WithConsumers(8), WithCapacity(256), waitOpt(tc.wait)}
			if tc.senders > 1 {
				opts = append(opts, WithMultiProducer())
			}
			c, err := Create[mrec](name, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			gofile := filepath.Join(t.TempDir(), "go")
			hows := []string{"recv", "batch", "func", "all"}
			rs := make([]*fanProc, tc.receivers)
			for k := range rs {
				rs[k] = startFan(t, "fan-recv", name, tc.wait, hows[k%len(hows)], "buf", 0, 0, "-")
			}
			shows := []string{"send", "batch", "func"}
			ss := make([]*fanProc, tc.senders)
			for p := range ss {
				ss[p] = startFan(t, "fan-send", name, tc.wait, p, shows[p%len(shows)], per, "none", 0, gofile)
			}
			for _, r := range rs {
				r.await(t, "joined")
			}
			for _, s := range ss {
				s.await(t, "ready")
			}
			start := time.Now()
			if err := os.WriteFile(gofile, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			for p, s := range ss {
				if _, err := s.finish(t, 3*time.Minute); err != nil {
					t.Fatalf("sender %d: %v", p, err)
				}
			}
			if err := c.CloseSend(); err != nil {
				t.Fatal(err)
			}
			all := map[fanKey]bool{}
			counts := make([]int, len(rs))
			for k, r := range rs {
				lines, err := r.finish(t, time.Minute)
				if err != nil {
					t.Fatalf("receiver %d: %v (%q)", k, err, r.tail())
				}
				l := parseRecv(t, lines)
				if !l.closed {
					t.Fatalf("receiver %d did not get ErrClosed", k)
				}
				if n := l.inversions(); n != 0 {
					t.Fatalf("receiver %d: %d values out of their sender's order", k, n)
				}
				union(t, all, l.vals, fmt.Sprintf("receiver %d", k))
				counts[k] = len(l.vals)
			}
			elapsed := time.Since(start)
			for p := range ss {
				for i := uint64(0); i < per; i++ {
					if !all[fanKey{uint64(p), i}] {
						t.Fatalf("value %d/%d never delivered", p, i)
					}
				}
			}
			if len(all) != int(per)*tc.senders {
				t.Fatalf("%d values delivered, %d sent", len(all), int(per)*tc.senders)
			}
			st := c.Stats()
			if st.Abandoned != 0 || st.Received != uint64(len(all)) {
				t.Fatalf("stats %+v, want %d received, none abandoned", st, len(all))
			}
			t.Logf("%d senders → %d receivers (%s): %d values in %v, %.0f values/s; per receiver %v",
				tc.senders, tc.receivers, tc.wait, len(all), elapsed.Round(time.Millisecond),
				float64(len(all))/elapsed.Seconds(), counts)
		})
	}
}

// fanRounds is the number of kill rounds per topology of
// TestWorkQueueKill: SHMCHAN_FAN_ROUNDS, or 100 (20 with -short or -race).
func fanRounds() int {
	if s := os.Getenv("SHMCHAN_FAN_ROUNDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if testing.Short() || raceEnabled {
		return 20
	}
	return 100
}

// TestWorkQueueKill: senders and receivers stream through a work queue
// (one sender into four receivers, and three into three) while the test,
// round after round, SIGKILLs a random receiver (in some rounds a sender
// too, in others it SIGSTOPs a receiver for a while) and starts a
// replacement. Senders print each value whose send returned; receivers
// print each value as soon as it is returned. At the end every sender is
// killed, the channel closed, and every receiver must drain and get
// ErrClosed. Then:
//   - no value was delivered twice, and none that was never sent;
//   - every value a sender confirmed was delivered, except at most one
//     per receiver kill (the value whose Recv returned in the killed
//     process before it could print it);
//   - per-sender order held within each receiver, except for at most one
//     value per receiver kill (a dead receiver's claimed value goes to
//     another, possibly after later values).
func TestWorkQueueKill(t *testing.T) {
	rounds := fanRounds()
	for _, tc := range []struct {
		senders, receivers int
		wait               string
	}{{1, 4, "futex"}, {3, 3, "mq"}} {
		t.Run(fmt.Sprintf("%dto%d-%s", tc.senders, tc.receivers, tc.wait), func(t *testing.T) {
			wqKill(t, tc.senders, tc.receivers, tc.wait, rounds)
		})
	}
}

func wqKill(t *testing.T, senders, receivers int, wait string, rounds int) {
	name := testName(t)
	opts := []Option{WithMultiConsumer(), WithConsumers(receivers + 4), WithCapacity(64), waitOpt(wait), withStuckCheck(fanStuck * time.Microsecond)}
	if senders > 1 {
		opts = append(opts, WithMultiProducer(), WithProducers(senders+2))
	}
	c, err := Create[mrec](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	type sender struct {
		p      *fanProc
		id     uint64
		window uint64 // values a send call may have committed past its last print
	}
	shows := []string{"send", "batch", "func", "try", "slow"}
	nextID := uint64(0)
	confirmed := map[uint64]uint64{} // sender id -> values confirmed (all below it)
	windows := map[uint64]uint64{}
	newSender := func() *sender {
		how := shows[rand.IntN(len(shows))]
		s := &sender{id: nextID, window: 1}
		if how == "batch" {
			s.window = mpscBatch
		}
		nextID++
		s.p = startFan(t, "fan-send", name, wait, s.id, how, 0, "raw", fanStuck, "-")
		windows[s.id] = s.window
		return s
	}
	endSender := func(s *sender) {
		lines := s.p.kill()
		n := uint64(0)
		for _, l := range lines {
			if l == "ready" {
				continue
			}
			v, err := strconv.ParseUint(l, 10, 64)
			if err != nil {
				t.Fatalf("sender %d printed %q", s.id, l)
			}
			n = v + 1
		}
		confirmed[s.id] = n
	}
	rhows := []string{"recv", "batch", "func", "try", "all"}
	newReceiver := func() *fanProc {
		return startFan(t, "fan-recv", name, wait, rhows[rand.IntN(len(rhows))], "raw", fanStuck, 0, "-")
	}
	var logs []recvLog
	ss := make([]*sender, senders)
	for i := range ss {
		ss[i] = newSender()
	}
	rs := make([]*fanProc, receivers)
	for i := range rs {
		rs[i] = newReceiver()
	}
	rkills, skills, stops := 0, 0, 0
	start := time.Now()
	for round := 0; round < rounds; round++ {
		time.Sleep(time.Duration(rand.IntN(15000)+1000) * time.Microsecond)
		k := rand.IntN(receivers)
		switch x := rand.IntN(10); {
		case x < 2: // a sender, and a receiver
			skills++
			i := rand.IntN(senders)
			endSender(ss[i])
			ss[i] = newSender()
			fallthrough
		case x < 8:
			rkills++
			logs = append(logs, parseRecv(t, rs[k].kill()))
			rs[k] = newReceiver()
		default: // a stopped receiver is waited for, never robbed
			stops++
			rs[k].h.Signal(syscall.SIGSTOP)
			time.Sleep(time.Duration(rand.IntN(3*fanStuck)+fanStuck) * time.Microsecond)
			rs[k].h.Signal(syscall.SIGCONT)
		}
	}
	// The end: every sender is killed (what it confirmed is known), the
	// channel closed; the receivers drain and see the close.
	for _, s := range ss {
		endSender(s)
	}
	if err := c.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for k, r := range rs {
		lines, err := r.finish(t, time.Minute)
		if err != nil {
			t.Fatalf("receiver %d: %v (%q; stats %+v)", k, err, r.tail(), c.Stats())
		}
		l := parseRecv(t, lines)
		if !l.closed {
			t.Fatalf("receiver %d ended without ErrClosed: %q", k, r.tail())
		}
		logs = append(logs, l)
	}
	elapsed := time.Since(start)
	all := map[fanKey]bool{}
	inv := 0
	for i, l := range logs {
		union(t, all, l.vals, fmt.Sprintf("receiver process %d", i))
		inv += l.inversions()
	}
	missing, beyond := 0, 0
	for id, n := range confirmed {
		for i := uint64(0); i < n; i++ {
			if !all[fanKey{id, i}] {
				missing++
			}
		}
		for i := n; i < n+windows[id]; i++ {
			if all[fanKey{id, i}] {
				beyond++ // committed, its send had not returned
			}
		}
	}
	for k := range all {
		n, ok := confirmed[k.p]
		if !ok || k.seq >= n+windows[k.p] {
			t.Fatalf("value %d/%d delivered, never sent (sender confirmed %d)", k.p, k.seq, n)
		}
	}
	if missing > rkills {
		t.Fatalf("%d confirmed values never delivered, for %d receiver kills", missing, rkills)
	}
	if inv > rkills {
		t.Fatalf("%d values out of their sender's order, for %d receiver kills", inv, rkills)
	}
	st := c.Stats()
	if st.Received != st.Sent {
		t.Fatalf("stats %+v: received != sent after the drain", st)
	}
	t.Logf("%d rounds in %v: %d receiver kills, %d sender kills, %d stops; %d values delivered (%d committed by a send that had not returned), "+
		"%d unaccounted (returned in a killed receiver before it printed), %d redelivered out of order, %d slots abandoned by killed senders",
		rounds, elapsed.Round(time.Millisecond), rkills, skills, stops, len(all), beyond, missing, inv, st.Abandoned)
}

// TestBroadcastProcesses: one publisher process into three subscriber
// processes, and two publishers (WithMultiProducer) into three: every
// subscriber gets every value, in each publisher's order, then ErrClosed.
func TestBroadcastProcesses(t *testing.T) {
	for _, pubs := range []int{1, 2} {
		t.Run(strconv.Itoa(pubs), func(t *testing.T) {
			n := fanCount(100_000, 10_000) / uint64(pubs)
			name := testName(t)
			opts := []Option{WithBroadcast(WaitForSlowest), WithConsumers(4), WithCapacity(256)}
			if pubs > 1 {
				opts = append(opts, WithMultiProducer())
			}
			c, err := Create[mrec](name, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			hows := []string{"recv", "func", "all"}
			rs := make([]*fanProc, 3)
			for k := range rs {
				rs[k] = startFan(t, "fan-recv", name, "futex", hows[k], "buf", 0, 0, "-")
			}
			for _, r := range rs {
				r.await(t, "joined")
			}
			start := time.Now()
			ps := make([]*fanProc, pubs)
			for p := range ps {
				ps[p] = startFan(t, "fan-send", name, "futex", p, []string{"send", "batch"}[p], n, "none", 0, "-")
			}
			for p, s := range ps {
				if _, err := s.finish(t, 3*time.Minute); err != nil {
					t.Fatalf("publisher %d: %v", p, err)
				}
			}
			if err := c.CloseSend(); err != nil {
				t.Fatal(err)
			}
			for k, r := range rs {
				lines, err := r.finish(t, time.Minute)
				if err != nil {
					t.Fatalf("subscriber %d: %v", k, err)
				}
				l := parseRecv(t, lines)
				next := map[uint64]uint64{}
				for _, v := range l.vals {
					if v.seq != next[v.p] {
						t.Fatalf("subscriber %d: publisher %d's %d after %d values", k, v.p, v.seq, next[v.p])
					}
					next[v.p]++
				}
				for p := range pubs {
					if next[uint64(p)] != n {
						t.Fatalf("subscriber %d: %d values of publisher %d, want %d", k, next[uint64(p)], p, n)
					}
				}
				if !l.closed || len(l.lags) > 0 {
					t.Fatalf("subscriber %d: closed %v, lags %v", k, l.closed, l.lags)
				}
			}
			t.Logf("%d publishers → 3 subscribers: %d values each in %v", pubs, n*uint64(pubs), time.Since(start).Round(time.Millisecond))
		})
	}
}

// vals parses the "P S" lines a helper printed so far.
func (p *fanProc) vals(t testing.TB) recvLog {
	p.mu.Lock()
	lines := append([]string(nil), p.lines...)
	p.mu.Unlock()
	return parseRecv(t, lines)
}

// awaitVals waits until the helper has printed n values.
func (p *fanProc) awaitVals(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(p.vals(t).vals) < n {
		if time.Now().After(deadline) {
			t.Fatalf("helper printed %d values in a minute, want %d", len(p.vals(t).vals), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBroadcastGate: a SIGSTOPped subscriber gates WaitForSlowest senders
// (TrySend gives ErrFull after exactly Cap() values, for far longer than
// the stuck check: a stopped process is alive); after SIGCONT it reads on;
// once it is SIGKILLed, it stops gating within a few stuck checks, and the
// others get every value in order.
func TestBroadcastGate(t *testing.T) {
	const capacity, stuck = 16, 20 * time.Millisecond
	name, c := testChan[mrec](t, WithBroadcast(WaitForSlowest), WithConsumers(3), WithCapacity(capacity), withStuckCheck(stuck))
	rs := make([]*fanProc, 3)
	for k := range rs {
		rs[k] = startFan(t, "fan-recv", name, "futex", "recv", "raw", stuck.Microseconds(), 0, "-")
	}
	for _, r := range rs {
		r.await(t, "joined")
	}
	slow := rs[2]
	t.Cleanup(func() { slow.h.Cmd.Process.Signal(syscall.SIGCONT) })
	seq := uint64(0)
	// fill sends with TrySend until ErrFull and returns how many it sent.
	fill := func() int {
		n := 0
		for ; ; n++ {
			err := c.TrySend(mkmrec(0, seq))
			if errors.Is(err, ErrFull) {
				return n
			}
			if err != nil {
				t.Fatal(err)
			}
			seq++
			if n > 10*capacity {
				t.Fatalf("%d values sent past a stopped subscriber", n)
			}
		}
	}
	// gated checks that TrySend keeps failing for d (well past the stuck
	// check) while the other subscribers read everything.
	gated := func(d time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if err := c.TrySend(mkmrec(0, seq)); !errors.Is(err, ErrFull) {
				t.Fatalf("TrySend with a stopped subscriber a ring behind: %v", err)
			}
		}
	}
	for round := 0; round < 2; round++ {
		slow.h.Stop()
		// The stopped subscriber has read everything sent before: a whole
		// ring fits, then nothing.
		if at := len(slow.vals(t).vals); at != int(seq) {
			t.Fatalf("round %d: the subscriber stopped after %d values of %d", round, at, seq)
		}
		if n := fill(); n != capacity {
			t.Fatalf("round %d: %d values sent past a stopped subscriber, want a ring's worth (%d)", round, n, capacity)
		}
		rs[0].awaitVals(t, int(seq))
		rs[1].awaitVals(t, int(seq))
		gated(10 * stuck)
		if round == 0 {
			slow.h.Signal(syscall.SIGCONT)
			slow.awaitVals(t, int(seq))
		}
	}
	// Killed: it stops gating within the stuck check (measured from the
	// kill to the first value that fits).
	killed := time.Now()
	slow.h.Cmd.Process.Signal(syscall.SIGKILL)
	var err2 error
	for {
		if err2 = c.TrySend(mkmrec(0, seq)); !errors.Is(err2, ErrFull) {
			break
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("a killed subscriber still gates the sender after %v (stuck check %v)", time.Since(killed), stuck)
		}
		time.Sleep(100 * time.Microsecond)
	}
	took := time.Since(killed)
	if err2 != nil {
		t.Fatal(err2)
	}
	seq++
	slow.kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 1000; i++ {
		if err := c.Send(ctx, mkmrec(0, seq)); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	if err := c.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for k, r := range rs[:2] {
		lines, err := r.finish(t, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		l := parseRecv(t, lines)
		for i, v := range l.vals {
			if v != (fanKey{0, uint64(i)}) {
				t.Fatalf("subscriber %d: value %d is %v", k, i, v)
			}
		}
		if len(l.vals) != int(seq) || !l.closed {
			t.Fatalf("subscriber %d: %d values (closed %v), want %d", k, len(l.vals), l.closed, seq)
		}
	}
	// Generous: the sender notices after one stuck check of a gate that
	// does not move, and its TrySend asks about liveness at most once per
	// stuck check.
	if took > 25*stuck {
		t.Fatalf("a killed subscriber stopped gating after %v, stuck check %v", took, stuck)
	}
	t.Logf("a killed subscriber stopped gating %v after the kill (stuck check %v)", took.Round(time.Millisecond), stuck)
}

// TestBroadcastDropOldestProcesses: DropOldest senders never block. A
// subscriber that pauses falls behind: once the publisher has finished (no
// send in flight) it gets one *LagError with the exact number it missed,
// then the newest Cap() values intact and in order. A subscriber racing a
// publisher that laps it gets intact values only, in order, and its
// LagErrors add up to what it missed.
func TestBroadcastDropOldestProcesses(t *testing.T) {
	t.Run("paused", func(t *testing.T) {
		const capacity, pause, total = 16, 5, 500
		name, c := testChan[mrec](t, WithBroadcast(DropOldest), WithConsumers(3), WithCapacity(capacity))
		gofile := filepath.Join(t.TempDir(), "go")
		lagger := startFan(t, "fan-recv", name, "futex", "recv", "raw", 0, pause, gofile)
		reader := startFan(t, "fan-recv", name, "futex", "func", "raw", 0, 0, "-")
		lagger.await(t, "joined")
		reader.await(t, "joined")
		send := func(from, to uint64) {
			for i := from; i < to; i++ {
				if err := c.TrySend(mkmrec(0, i)); err != nil {
					t.Fatalf("DropOldest TrySend %d: %v", i, err)
				}
			}
		}
		send(0, pause)
		lagger.await(t, "paused")
		start := time.Now()
		send(pause, total)
		d := time.Since(start)
		if err := c.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(gofile, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		lines, err := lagger.finish(t, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		l := parseRecv(t, lines)
		if want := uint64(total - capacity - pause); len(l.lags) != 1 || l.lags[0] != want {
			t.Fatalf("lagging subscriber: lags %v, want one of %d", l.lags, want)
		}
		if len(l.vals) != pause+capacity {
			t.Fatalf("lagging subscriber: %d values, want %d", len(l.vals), pause+capacity)
		}
		for i, v := range l.vals {
			want := uint64(i)
			if i >= pause {
				want = total - capacity + uint64(i-pause)
			}
			if v != (fanKey{0, want}) {
				t.Fatalf("lagging subscriber: value %d is %v, want seq %d", i, v, want)
			}
		}
		// Where in its output the lag came: right after "paused".
		for i, s := range lines {
			if s == "paused" && (i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "lag ")) {
				t.Fatalf("lagging subscriber: after paused came %q", lines[i+1:min(i+3, len(lines))])
			}
		}
		checkLapped(t, reader, total)
		t.Logf("%d values sent past a paused subscriber in %v without blocking", total-pause, d.Round(time.Microsecond))
	})
	t.Run("racing", func(t *testing.T) {
		total := fanCount(200_000, 20_000)
		name, c := testChan[mrec](t, WithBroadcast(DropOldest), WithConsumers(3), WithCapacity(4))
		rs := []*fanProc{
			startFan(t, "fan-recv", name, "futex", "func", "buf", 0, 0, "-"),
			startFan(t, "fan-recv", name, "futex", "recv", "buf", 0, 0, "-"),
			startFan(t, "fan-recv", name, "futex", "all", "buf", 0, 0, "-"),
		}
		for _, r := range rs {
			r.await(t, "joined")
		}
		p := startFan(t, "fan-send", name, "futex", 0, "send", total, "none", 0, "-")
		if _, err := p.finish(t, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseSend(); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			checkLapped(t, r, total)
		}
	})
}

// checkLapped checks a DropOldest subscriber's whole output: values in
// order, each gap announced by LagErrors whose counts add up to it, the
// total received plus missed equal to what was sent, and ErrClosed.
func checkLapped(t *testing.T, r *fanProc, total uint64) {
	t.Helper()
	lines, err := r.finish(t, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	next, got, missed, lags := uint64(0), 0, uint64(0), 0
	closed := false
	for _, s := range lines {
		var p, q uint64
		switch {
		case s == "joined":
		case s == "closed":
			closed = true
		case strings.HasPrefix(s, "lag "):
			n, _ := strconv.ParseUint(s[4:], 10, 64)
			if n == 0 {
				t.Fatalf("a LagError of 0")
			}
			next += n
			missed += n
			lags++
		default:
			if _, err := fmt.Sscanf(s, "%d %d", &p, &q); err != nil {
				t.Fatalf("subscriber printed %q", s)
			}
			if p != 0 || q != next {
				t.Fatalf("subscriber got %d/%d, want 0/%d (after %d lags missing %d)", p, q, next, lags, missed)
			}
			next++
			got++
		}
	}
	if !closed || uint64(got)+missed != total {
		t.Fatalf("subscriber: %d values + %d missed, want %d (closed %v)", got, missed, total, closed)
	}
	t.Logf("subscriber: %d values, %d missed in %d LagErrors", got, missed, lags)
}

// TestBroadcastLateJoiner: a subscriber that joins after values were sent
// starts at the values sent after it joined (both policies).
func TestBroadcastLateJoiner(t *testing.T) {
	for _, pol := range []Overflow{WaitForSlowest, DropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			name, c := testChan[mrec](t, WithBroadcast(pol), WithConsumers(2), WithCapacity(64))
			early := startFan(t, "fan-recv", name, "futex", "recv", "raw", 0, 0, "-")
			early.await(t, "joined")
			for i := uint64(0); i < 20; i++ {
				if err := c.TrySend(mkmrec(0, i)); err != nil {
					t.Fatal(err)
				}
			}
			early.awaitVals(t, 20)
			late := startFan(t, "fan-recv", name, "futex", "try", "raw", 0, 0, "-")
			late.await(t, "joined")
			for i := uint64(20); i < 50; i++ {
				if err := c.TrySend(mkmrec(0, i)); err != nil {
					t.Fatal(err)
				}
			}
			c.CloseSend()
			for k, r := range []*fanProc{early, late} {
				lines, err := r.finish(t, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				l := parseRecv(t, lines)
				from := []uint64{0, 20}[k]
				if len(l.vals) != int(50-from) || !l.closed {
					t.Fatalf("subscriber %d: %d values, closed %v; want %d", k, len(l.vals), l.closed, 50-from)
				}
				for i, v := range l.vals {
					if v.seq != from+uint64(i) {
						t.Fatalf("subscriber %d: value %d is %v, want seq %d", k, i, v, from+uint64(i))
					}
				}
			}
			// Joining a closed, drained channel: ErrClosed at once.
			after := startFan(t, "fan-recv", name, "futex", "recv", "raw", 0, 0, "-")
			lines, err := after.finish(t, time.Minute)
			if err != nil || len(lines) != 1 || lines[0] != "closed" {
				t.Fatalf("joining a closed channel: %q, %v", lines, err)
			}
		})
	}
}

// fanTopologies are the topologies of the close and context tests.
var fanTopologies = []struct {
	name      string
	opts      []Option
	receivers int
	fanOut    bool
}{
	{"spsc", nil, 1, false},
	{"mpsc", []Option{WithMultiProducer()}, 1, false},
	{"workqueue", []Option{WithMultiConsumer()}, 3, true},
	{"mpmc", []Option{WithMultiConsumer(), WithMultiProducer()}, 3, true},
	{"broadcast-wait", []Option{WithBroadcast(WaitForSlowest)}, 3, true},
	{"broadcast-drop", []Option{WithBroadcast(DropOldest)}, 3, true},
}

// TestCloseSendDrainsProcesses: in every topology and wait mode, receiver
// processes that are receiving when CloseSend comes get everything sent
// before it (work queue: all together; broadcast: each; DropOldest: each,
// less what it was told it missed), then ErrClosed; a receiver that joins
// the closed, drained channel gets ErrClosed at once.
func TestCloseSendDrainsProcesses(t *testing.T) {
	n := fanCount(3000, 1000)
	for i, tp := range fanTopologies {
		for j, wait := range crossWaits {
			if raceEnabled && j != i%len(crossWaits) {
				// Race-instrumented helpers take a second or more to start:
				// each topology in one wait mode, each mode in two topologies.
				continue
			}
			t.Run(tp.name+"/"+wait, func(t *testing.T) {
				name, c := testChan[mrec](t, append([]Option{waitOpt(wait), WithCapacity(64)}, tp.opts...)...)
				hows := []string{"recv", "func", "all"}
				rs := make([]*fanProc, tp.receivers)
				for k := range rs {
					rs[k] = startFan(t, "fan-recv", name, wait, hows[k%len(hows)], "buf", 0, 0, "-")
				}
				for _, r := range rs {
					r.await(t, "joined")
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				for i := uint64(0); i < n; i++ {
					if err := c.Send(ctx, mkmrec(0, i)); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.CloseSend(); err != nil {
					t.Fatal(err)
				}
				all := map[fanKey]bool{}
				for k, r := range rs {
					lines, err := r.finish(t, time.Minute)
					if err != nil {
						t.Fatalf("receiver %d: %v", k, err)
					}
					l := parseRecv(t, lines)
					if !l.closed {
						t.Fatalf("receiver %d ended without ErrClosed", k)
					}
					if l.inversions() != 0 {
						t.Fatalf("receiver %d: values out of order", k)
					}
					if !tp.fanOut || tp.name == "workqueue" || tp.name == "mpmc" {
						union(t, all, l.vals, fmt.Sprintf("receiver %d", k))
						continue
					}
					missed := uint64(0)
					for _, m := range l.lags {
						missed += m
					}
					if tp.name == "broadcast-wait" && missed != 0 {
						t.Fatalf("receiver %d: lagged on WaitForSlowest", k)
					}
					if uint64(len(l.vals))+missed != n {
						t.Fatalf("receiver %d: %d values + %d missed, want %d", k, len(l.vals), missed, n)
					}
				}
				if len(all) > 0 && len(all) != int(n) {
					t.Fatalf("%d values delivered, want %d", len(all), n)
				}
				late := startFan(t, "fan-recv", name, wait, "recv", "raw", 0, 0, "-")
				lines, err := late.finish(t, time.Minute)
				if err != nil || len(lines) != 1 || lines[0] != "closed" {
					t.Fatalf("joining the closed, drained channel: %q, %v", lines, err)
				}
			})
		}
	}
}

// TestFanOutBusy: past WithConsumers live receivers, a receive call gets
// ErrBusy at once (TryRecv and Recv alike, in this process and another);
// senders do not count; a killed receiver's entry is taken by the next.
func TestFanOutBusy(t *testing.T) {
	for _, tp := range fanTopologies[2:] {
		t.Run(tp.name, func(t *testing.T) {
			name, c := testChan[mrec](t, append([]Option{WithConsumers(2)}, tp.opts...)...)
			hs := []*fanProc{
				startFan(t, "fan-recv", name, "futex", "recv", "raw", 0, 0, "-"),
				startFan(t, "fan-recv", name, "futex", "recv", "raw", 0, 0, "-"),
			}
			for _, h := range hs {
				h.await(t, "joined")
			}
			if _, err := c.TryRecv(); !errors.Is(err, ErrBusy) {
				t.Fatalf("TryRecv past the entries: %v", err)
			}
			got := make(chan error, 1)
			start := time.Now()
			go func() { _, err := c.Recv(context.Background()); got <- err }()
			select {
			case err := <-got:
				if !errors.Is(err, ErrBusy) {
					t.Fatalf("Recv past the entries: %v", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("Recv took %v to report ErrBusy", d)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Recv past the entries waits instead of returning ErrBusy")
			}
			third := startFan(t, "fan-recv", name, "futex", "recv", "raw", 0, 0, "-")
			third.await(t, "busy")
			// Senders do not count against WithConsumers.
			for p := 0; p < 2; p++ {
				s, err := Open[mrec](name)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				err = s.TrySend(mkmrec(uint64(p), 0))
				if tp.name == "workqueue" || tp.name == "broadcast-wait" || tp.name == "broadcast-drop" {
					// One sender entry: the second handle is busy as a sender.
					if p == 1 && !errors.Is(err, ErrBusy) || p == 0 && err != nil {
						t.Fatalf("sender %d: %v", p, err)
					}
				} else if err != nil {
					t.Fatalf("sender %d: %v", p, err)
				}
			}
			hs[0].kill()
			if _, err := c.TryRecv(); err != nil && !errors.Is(err, ErrEmpty) {
				t.Fatalf("after a receiver died: %v", err)
			}
			fourth := startFan(t, "fan-recv", name, "futex", "recv", "raw", 0, 0, "-")
			fourth.await(t, "busy")
		})
	}
}

// TestFanOutContext: a receiver asleep on an empty work queue or
// broadcast channel, and a sender asleep on a full one (a work queue with
// no receiver, a WaitForSlowest broadcast gated by a live subscriber that
// does not read), return context.Canceled at once when their context is
// cancelled, in every wait mode: far sooner than the bounded sleep
// (ring.MaxSleep, 200 ms) they are in would end. The gating subscriber is
// another process; the sender's stuck check is long, so it sleeps for the
// full bound too.
func TestFanOutContext(t *testing.T) {
	const after, limit = 30 * time.Millisecond, 100 * time.Millisecond
	for _, tp := range fanTopologies[2:] {
		for _, wait := range crossWaits {
			t.Run(tp.name+"/"+wait, func(t *testing.T) {
				name, c := testChan[mrec](t, append([]Option{waitOpt(wait), WithCapacity(4), withStuckCheck(time.Minute)}, tp.opts...)...)
				// cancelled runs call with a context cancelled after a while and
				// checks that it returns Canceled within limit of the cancel.
				cancelled := func(what string, sleeps func() uint64, call func(ctx context.Context) error) {
					t.Helper()
					for trial := 0; trial < 3; trial++ {
						ctx, cancel := context.WithCancel(context.Background())
						before := sleeps()
						got := make(chan error, 1)
						go func() { got <- call(ctx) }()
						time.Sleep(after)
						if wait != "spin" && sleeps() == before {
							cancel()
							<-got
							t.Fatalf("%s: did not sleep", what)
						}
						at := time.Now()
						cancel()
						select {
						case err := <-got:
							if d := time.Since(at); !errors.Is(err, context.Canceled) || d > limit {
								t.Fatalf("%s: %v, %v after the cancel", what, err, d)
							}
						case <-time.After(10 * time.Second):
							t.Fatalf("%s: still blocked 10s after the cancel", what)
						}
					}
				}
				r, err := Open[mrec](name)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if _, err := r.TryRecv(); !errors.Is(err, ErrEmpty) {
					t.Fatal(err)
				}
				cancelled("Recv", func() uint64 { return c.Stats().RecvSleeps }, func(ctx context.Context) error {
					_, err := r.Recv(ctx)
					return err
				})
				r.Close()
				if tp.name == "broadcast-drop" {
					return // its senders never wait
				}
				if tp.name == "broadcast-wait" {
					gate := startFan(t, "fan-recv", name, wait, "recv", "raw", 0, 1, "-")
					gate.await(t, "joined")
					if err := c.TrySend(mkmrec(0, 0)); err != nil {
						t.Fatal(err)
					}
					gate.await(t, "paused") // it read one value, and reads no more
				}
				for {
					err := c.TrySend(mkmrec(0, 1))
					if errors.Is(err, ErrFull) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				cancelled("Send", func() uint64 { return c.Stats().SendSleeps }, func(ctx context.Context) error {
					return c.Send(ctx, mkmrec(0, 2))
				})
			})
		}
	}
}
