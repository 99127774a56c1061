package shmchan

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// The crash soak: a sender process and a receiver process stream values
// through one SPSC channel while the test SIGKILLs one of them at a random
// moment, round after round, and replaces it. Nothing committed may be lost
// or duplicated, no value may be torn, nothing may hang.
//
// What "lost" means across a receiver kill: a value whose Recv returned in
// the killed process is consumed, even if the process died before it could
// print it. The check therefore allows, at each receiver kill and only
// there, one value after the last one printed to be missing (two receivers
// killed in a row before either printed: two values, and so on).
//
// Rounds: SHMCHAN_SOAK_ROUNDS (default 30; 8 with -short; 1000 was run by
// hand, see the README).

func init() {
	extraHelpers["soak-recv"] = func(args []string) int {
		c, err := Open[rec](args[0], waitOpt(args[1]))
		if err != nil {
			return soakFail(err)
		}
		defer c.Close()
		for {
			v, err := c.Recv(context.Background())
			if errors.Is(err, ErrClosed) {
				say("closed")
				return 0
			}
			if err != nil {
				return soakFail(err)
			}
			if !v.ok() {
				return soakFail(errors.New("torn value " + strconv.FormatUint(v.Seq, 10)))
			}
			say("%d", v.Seq)
		}
	}
}

func soakFail(err error) int {
	os.Stderr.WriteString("soak helper: " + err.Error() + "\n")
	return 1
}

func soakRounds() int {
	if s := os.Getenv("SHMCHAN_SOAK_ROUNDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if testing.Short() || raceEnabled {
		return 8
	}
	return 30
}

func TestCrashSoak(t *testing.T) {
	for _, wait := range crossWaits[:2] {
		t.Run(wait, func(t *testing.T) { soak(t, wait, soakRounds()) })
	}
}

func soak(t *testing.T, wait string, rounds int) {
	name := testName(t)
	c, err := Create[rec](name, waitOpt(wait), WithCapacity(256))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // this handle takes no role: it only watches the counters

	last := int64(-1) // last value a receiver printed
	slack := int64(0) // receivers killed since last was printed: each may have consumed one value unprinted
	gaps := int64(0)
	// take consumes the lines a receiver printed so far (all of them, if
	// until is true: the receiver has exited or been killed).
	take := func(h *helper, all bool) {
		t.Helper()
		for {
			var l string
			var ok bool
			if all {
				l, ok = <-h.Lines
			} else {
				select {
				case l, ok = <-h.Lines:
				default:
					return
				}
			}
			if !ok || l == "closed" {
				return
			}
			n, err := strconv.ParseInt(l, 10, 64)
			if err != nil {
				t.Fatalf("receiver printed %q", l)
			}
			if n <= last || n > last+1+slack {
				t.Fatalf("after %d the receiver got %d with %d receivers killed in between (lost or duplicated values)", last, n, slack)
			}
			gaps += n - last - 1
			slack = 0
			last = n
		}
	}
	sender := spawn(t, "send", name, wait, 0, 1<<62, 0)
	sender.Expect("ready")
	receiver := spawn(t, "soak-recv", name, wait)
	kills := [2]int{}
	for round := 0; round < rounds; round++ {
		time.Sleep(time.Duration(rand.IntN(20000)+500) * time.Microsecond)
		take(receiver, false)
		if rand.IntN(2) == 0 {
			kills[0]++
			sender.Kill()
			// Everything the dead sender committed is in the tail count;
			// values are 0..tail-1, so the next sender starts at the tail.
			next := c.Stats().Sent
			sender = spawn(t, "send", name, wait, next, 1<<62, 0)
			sender.Expect("ready")
		} else {
			kills[1]++
			receiver.Kill()
			take(receiver, true)
			slack++
			receiver = spawn(t, "soak-recv", name, wait)
		}
	}
	// The end: a last sender sends a few more values and closes; the
	// receiver drains and sees the close.
	sender.Kill()
	next := c.Stats().Sent
	final := spawn(t, "send", name, wait, next, 100, 1)
	if err := final.Wait(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { receiver.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the receiver did not drain and exit: a hang")
	}
	take(receiver, true)
	if err := receiver.Wait(); err != nil {
		t.Fatalf("receiver: %v", err)
	}
	if want := int64(next + 100 - 1); last != want {
		t.Fatalf("last value %d, want %d", last, want)
	}
	if gaps > int64(kills[1]) {
		t.Fatalf("%d gaps for %d receiver kills", gaps, kills[1])
	}
	t.Logf("%d rounds: %d sender kills, %d receiver kills (%d of them mid-value), %d values, none lost, duplicated or torn",
		rounds, kills[0], kills[1], gaps, last+1)
}
