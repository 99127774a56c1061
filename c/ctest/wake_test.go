package ctest_test

// Wake-up stress between C and Go: a ping-pong where each side pauses a
// random while before answering, so that the other has gone past its spin
// and sleeps on nearly every message. Each message carries its send time
// on CLOCK_MONOTONIC, so both directions' wake latency is measured: Go
// waking a sleeping C receiver, and C waking a sleeping Go receiver.
//
// A lost wake-up leaves the sleeper in a sleep that only its bound (200
// ms) ends. It has a signature that scheduling noise on a loaded machine
// has not: the value arrives late although the receiver went to sleep at
// least twice in the round (so past its first sleep, which is taken
// without the barrier and bounded to 100 µs by design) and the sender
// issued no wake-up. No round may show it. Latency itself is checked too:
// p99 far below the bound, and no value ever as late as the bound.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan"
)

const (
	lostAfter = 10 * time.Millisecond  // a late value, for the lost-wake signature
	p99Bound  = 50 * time.Millisecond  // the sleep bound is 200 ms
	maxBound  = 190 * time.Millisecond // a value this late waited for the bound
)

func monoNow(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano()
}

func TestWakeStress(t *testing.T) {
	for _, w := range []string{"futex", "mq"} {
		t.Run(w, func(t *testing.T) {
			// A lost wake-up shows in every run (each lost one waits for the
			// 200 ms bound); a machine that stalls this process for a moment
			// shows in one. So the timing bounds fail the test only when
			// three runs in a row miss them. The lost-wake signature and the
			// wake counts fail it at once.
			for run := 1; ; run++ {
				timing := wakeStress(t, w)
				if len(timing) == 0 || t.Failed() {
					return
				}
				if run == 3 {
					t.Errorf("in each of %d runs; the last: %s", run, strings.Join(timing, "; "))
					return
				}
				t.Logf("run %d: %s; running again (the machine may have stalled)", run, strings.Join(timing, "; "))
			}
		})
	}
}

// wakeStress runs one stress of wait mode w and returns the timing bounds
// it missed.
func wakeStress(t *testing.T, w string) (timing []string) {
	rounds := count(1000)
	if w == "mq" {
		rounds = count(400)
	}
	toC, fromC := testName(t), testName(t)
	opts := []shmchan.Option{shmchan.WithCapacity(4), shmchan.WithMaxMessageSize(16), waitOpt(w)}
	a, err := shmchan.Create[[]byte](toC, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := shmchan.Create[[]byte](fromC, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := startPeer(t, "echo", "in="+toC, "out="+fromC, fmt.Sprint("n=", rounds), "pause_us=1500",
		fmt.Sprint("lost_ms=", lostAfter.Milliseconds()))
	p.ExpectPrefix("ready")
	ctx := ctxFor(t)
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, rounds)
	msg := make([]byte, 16)
	start := time.Now()
	late, lost := 0, 0
	for i := range rounds {
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
		st0 := b.Stats()
		binary.LittleEndian.PutUint64(msg, uint64(monoNow(t)))
		binary.LittleEndian.PutUint64(msg[8:], uint64(i))
		if err := a.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		v, err := b.Recv(ctx)
		now := monoNow(t)
		if err != nil {
			t.Fatal(err)
		}
		st1 := b.Stats()
		if len(v) != 16 || binary.LittleEndian.Uint64(v[8:]) != uint64(i) {
			t.Fatalf("round %d: got %x", i, v)
		}
		l := time.Duration(now - int64(binary.LittleEndian.Uint64(v)))
		lat = append(lat, l)
		if l > lostAfter {
			late++
			if st1.SenderWakes == st0.SenderWakes && st1.RecvSleeps-st0.RecvSleeps >= 2 {
				lost++
				t.Errorf("round %d looks like a lost wake-up of the Go receiver: %v late, %d sleeps, no wake from C",
					i, l, st1.RecvSleeps-st0.RecvSleeps)
			}
		}
	}
	elapsed := time.Since(start)
	var cLost []string
	for {
		l := p.ExpectPrefix("")
		if strings.HasPrefix(l, "lost?") {
			cLost = append(cLost, l)
			continue
		}
		if strings.HasPrefix(l, "worst ") {
			f := strings.Fields(l)
			p.Finish()
			field := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
			cWorst, cSum, cWakes, cSleeps := time.Duration(field(1)), field(3), field(5), field(7)
			cLate, cLostN, cP99 := field(9), field(11), time.Duration(field(13))
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			goWorst, goP99 := lat[len(lat)-1], lat[len(lat)*99/100]
			var goSum time.Duration
			for _, l := range lat {
				goSum += l
			}
			st := b.Stats()
			t.Logf("%d rounds in %v. Go woken by C: mean %v, p99 %v, worst %v, %d late (> %v), %d wakes, %d sleeps. "+
				"C woken by Go: mean %v, p99 %v, worst %v, %d late, %d wakes, %d sleeps",
				rounds, elapsed.Round(time.Millisecond), goSum/time.Duration(rounds), goP99, goWorst, late, lostAfter,
				st.SenderWakes, st.RecvSleeps, time.Duration(cSum/int64(rounds)), cP99, cWorst, cLate, cWakes, cSleeps)
			if cLostN != 0 {
				t.Errorf("%d rounds look like lost wake-ups of the C receiver:\n%s", cLostN, strings.Join(cLost, "\n"))
			}
			for _, c := range []struct {
				who        string
				p99, worst time.Duration
			}{{"the Go receiver by C", goP99, goWorst}, {"the C receiver by Go", cP99, cWorst}} {
				if c.p99 > p99Bound {
					timing = append(timing, fmt.Sprintf("p99 wake latency of %s: %v", c.who, c.p99))
				}
				if c.worst > maxBound {
					timing = append(timing, fmt.Sprintf("worst wake latency of %s: %v, as late as the sleep bound", c.who, c.worst))
				}
			}
			// Nearly every round finds the receiver asleep (a loaded
			// machine makes some find it still spinning); those must be
			// woken by the sender.
			if st.SenderWakes < uint64(rounds)/4 {
				t.Errorf("C issued %d wakes to the Go receiver in %d rounds", st.SenderWakes, rounds)
			}
			if cWakes < int64(rounds)/4 {
				t.Errorf("Go issued %d wakes to the C receiver in %d rounds", cWakes, rounds)
			}
			return timing
		}
	}
}
