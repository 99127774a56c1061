package shmchan

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func init() {
	// "ooc" name startAtUnixNano: wait for the start time, then OpenOrCreate
	// and report the capacity seen, so that several processes race.
	extraHelpers["ooc"] = func(args []string) int {
		var at int64
		fmt.Sscan(args[1], &at)
		time.Sleep(time.Until(time.Unix(0, at)))
		c, err := OpenOrCreate[rec](args[0], WithCapacity(256))
		if err != nil {
			fmt.Fprintln(os.Stderr, "ooc:", err)
			return 1
		}
		defer c.Close()
		say("cap %d", c.Cap())
		return 0
	}
}

// TestOpenOrCreateRace: processes that call OpenOrCreate on the same name at
// the same moment all succeed, on one region.
func TestOpenOrCreateRace(t *testing.T) {
	rounds := 10
	if testing.Short() || raceEnabled {
		rounds = 3
	}
	for round := 0; round < rounds; round++ {
		name := testName(t)
		at := time.Now().Add(300 * time.Millisecond).UnixNano()
		var hs []*helper
		for i := 0; i < 6; i++ {
			hs = append(hs, spawn(t, "ooc", name, at))
		}
		for i, h := range hs {
			h.Expect("cap 256")
			if err := h.Wait(); err != nil {
				t.Fatalf("round %d, process %d: %v", round, i, err)
			}
		}
		c, err := Open[rec](name)
		if err != nil {
			t.Fatalf("round %d: the region after the race: %v", round, err)
		}
		c.Close()
	}
}
