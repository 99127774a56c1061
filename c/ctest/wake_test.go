package ctest_test

// Wake-up stress between C and Go: a ping-pong where each side pauses a
// random while before answering, so that the other has gone past its spin
// and sleeps on every message. Each message carries its send time on
// CLOCK_MONOTONIC, so both directions' wake latency is measured: Go waking
// a sleeping C receiver, and C waking a sleeping Go receiver. A lost
// wake-up would show as a sleep that ends only at its bound (200 ms); the
// worst case must be far below that, and the wake counters show the wakes
// were real (the sleepers were woken, they did not time out).

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
			p := startPeer(t, "echo", "in="+toC, "out="+fromC, fmt.Sprint("n=", rounds), "pause_us=1500")
			p.expect("ready")
			ctx := ctxFor(t)
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]time.Duration, 0, rounds)
			msg := make([]byte, 16)
			start := time.Now()
			for i := range rounds {
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
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
				if len(v) != 16 || binary.LittleEndian.Uint64(v[8:]) != uint64(i) {
					t.Fatalf("round %d: got %x", i, v)
				}
				lat = append(lat, time.Duration(now-int64(binary.LittleEndian.Uint64(v))))
			}
			elapsed := time.Since(start)
			f := strings.Fields(p.expect("worst "))
			p.finish()
			cWorst, _ := strconv.ParseInt(f[1], 10, 64)
			cSum, _ := strconv.ParseInt(f[3], 10, 64)
			cWakes, _ := strconv.ParseUint(f[5], 10, 64)
			cSleeps, _ := strconv.ParseUint(f[7], 10, 64)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			goWorst, goP99 := lat[len(lat)-1], lat[len(lat)*99/100]
			var goSum time.Duration
			for _, l := range lat {
				goSum += l
			}
			st := b.Stats()
			t.Logf("%d rounds in %v; Go woken by C: mean %v, p99 %v, worst %v (%d wakes, %d sleeps); C woken by Go: mean %v, worst %v (%d wakes, %d sleeps)",
				rounds, elapsed.Round(time.Millisecond), goSum/time.Duration(rounds), goP99, goWorst, st.SenderWakes, st.RecvSleeps,
				time.Duration(cSum/int64(rounds)), time.Duration(cWorst), cWakes, cSleeps)
			const bound = 50 * time.Millisecond // the sleep bound is 200 ms
			if goWorst > bound {
				t.Errorf("worst wake of the Go receiver by C: %v", goWorst)
			}
			if time.Duration(cWorst) > bound {
				t.Errorf("worst wake of the C receiver by Go: %v", time.Duration(cWorst))
			}
			// Most rounds find the receiver asleep (a loaded machine makes some find
			// it still spinning); each of those must be a
			// real wake-up issued by the sender, not a timed-out sleep.
			if st.SenderWakes < uint64(rounds)/4 {
				t.Errorf("C issued %d wakes to the Go receiver in %d rounds", st.SenderWakes, rounds)
			}
			if cWakes < uint64(rounds)/4 {
				t.Errorf("Go issued %d wakes to the C receiver in %d rounds", cWakes, rounds)
			}
		})
	}
}
