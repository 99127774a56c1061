package bench

// What a run measures and for how long (Config, Defaults), the value sizes
// the bench has types for, and the geometry each size gets.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is what a run measures and for how long. Defaults gives the
// command's settings; the command's flags change them.
type Config struct {
	Quick          bool           // the smoke run (reported in the JSON)
	Runs           int            // repetitions; the tables show the median and min..max
	Budget         time.Duration  // one throughput measurement
	LatencyBudget  time.Duration  // one latency measurement, at most
	LatencySamples int            // round trips per latency measurement, at most
	Sizes          []int          // value sizes in bytes, each one of ParseSize's
	Only           *regexp.Regexp // if not nil: only the rows whose key or name matches
	JSONPath       string         // if not "": also write the results as JSON here
	ChartPath      string         // if not "": also draw an SVG chart here
	Verbose        bool           // print every measurement on stderr as it is made
	Limit          time.Duration  // start no run that would end after this; 0: none

	// corruptAt, if not 0, makes every sender damage that value on
	// purpose; the tests use it to check that the damage is caught.
	corruptAt uint64
}

// Defaults returns the settings of a full run, or of the smoke run (quick):
// 3 sizes, 3 runs, short measurements, under 20 seconds.
func Defaults(quick bool) Config {
	if quick {
		return Config{Quick: true, Runs: 3, Budget: 25 * time.Millisecond, LatencyBudget: 60 * time.Millisecond,
			LatencySamples: 3000, Sizes: []int{16, 4 << 10, 1 << 20}, Limit: 15 * time.Second}
	}
	return Config{Runs: 5, Budget: 100 * time.Millisecond, LatencyBudget: 400 * time.Millisecond,
		LatencySamples: 20000, Sizes: allSizes, Limit: 150 * time.Second}
}

// The sizes, and per size the channel capacity (so a region stays within
// about 8 MiB) and the batch length of the batched rows.
var allSizes = []int{16, 256, 4 << 10, 64 << 10, 1 << 20}

func geometry(size int) (capacity, batch int) {
	switch {
	case size <= 256:
		return 1024, 64
	case size <= 4<<10:
		return 256, 32
	case size <= 64<<10:
		return 64, 8
	default:
		return 8, 4
	}
}

// warmCount is how many values a throughput run sends before the clock
// starts: every slot written twice, so page faults and cold caches are out.
func warmCount(size int) uint64 {
	c, _ := geometry(size)
	return uint64(2 * c)
}

// ParseSize reads one of the sizes the bench has types for: 16, 256,
// 4k, 64k, 1m (or the same in bytes).
func ParseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mul := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mul, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mul, t = 1<<20, strings.TrimSuffix(t, "m")
	}
	n, err := strconv.Atoi(t)
	if err == nil {
		n *= mul
		for _, ok := range allSizes {
			if n == ok {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("size %q: want one of 16, 256, 4k, 64k, 1m", s)
}
