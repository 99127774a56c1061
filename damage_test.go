package shmchan

// Damaged regions: whatever bytes sit at the name, Open returns ErrCorrupt
// or ErrIncompatible, promptly, and never panics or hangs. The damaged
// region is made as a creator would make it: the bytes written to
// /dev/shm/<name> with mode 0600, the ready word set where Open is meant to
// get past its wait for the creator.

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/layout"
)

// errOpened is what openVerdict reports when Open accepted the region.
var errOpened = errors.New("Open succeeded")

// regionImage creates a region of T with opts, and returns its bytes (the
// region is removed again).
func regionImage[T any](t *testing.T, opts ...Option) []byte {
	t.Helper()
	name := testName(t)
	c, err := Create[T](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	closeOK(t, c)
	b, err := os.ReadFile(shmPath(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	return b
}

// plantRegion writes b as a new region and returns its name.
func plantRegion(t *testing.T, b []byte) string {
	t.Helper()
	name := testName(t)
	if err := os.WriteFile(shmPath(name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// openVerdict opens the region called name as a Chan[T] and returns Open's
// error, errOpened if it succeeded (the handle is closed again). A panic
// or an Open that does not return within a generous bound fails the test.
func openVerdict[T any](t *testing.T, name string, opts ...Option) error {
	t.Helper()
	start := time.Now()
	err := testutil.Bounded(t, "Open", 30*time.Second, func() error {
		c, err := Open[T](name, opts...)
		if err == nil {
			err = errOpened
			if cerr := c.Close(); cerr != nil {
				err = fmt.Errorf("%w, then Close: %v", errOpened, cerr)
			}
		}
		return err
	})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open took %v: longer than its bounded wait for the creator", d)
	}
	return err
}

// verdictErr is the error Open gives for a damaged region's verdict.
var verdictErr = map[testutil.Verdict]error{
	testutil.Opens:        errOpened,
	testutil.Corrupt:      ErrCorrupt,
	testutil.Incompatible: ErrIncompatible,
}

// wantDamaged checks that err is one of want and not a success (unless
// want is errOpened: then exactly that, a clean open and close).
func wantDamaged(t *testing.T, what string, err error, want ...error) {
	t.Helper()
	for _, w := range want {
		if err == w || w != errOpened && errors.Is(err, w) {
			return
		}
	}
	t.Errorf("%s: Open returned %v, want one of %v", what, err, want)
}

// openDamaged plants each damaged image and checks what Open[T] gives;
// the slow ones (Open waits its bounded time for a creator first, about
// a second each) run in parallel subtests.
func openDamaged[T any](t *testing.T, cases []testutil.Damaged) {
	t.Helper()
	for _, d := range cases {
		if d.Slow {
			continue
		}
		wantDamaged(t, d.What, openVerdict[T](t, plantRegion(t, d.Image)), verdictErr[d.Want])
	}
	for i, d := range cases {
		if !d.Slow {
			continue
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			wantDamaged(t, d.What, openVerdict[T](t, plantRegion(t, d.Image)), verdictErr[d.Want])
		})
	}
}

// TestDamagedRandom: files of random bytes, of many sizes, with and without
// a valid magic and version in front, with the ready word set so that Open
// gets past its wait and looks at the bytes.
func TestDamagedRandom(t *testing.T) {
	openDamaged[rec](t, testutil.DamagedRandom())
}

// TestDamagedShort: files too short to hold the ready word or the header.
// Open waits its bounded time for a creator, then reports ErrCorrupt.
func TestDamagedShort(t *testing.T) {
	openDamaged[rec](t, testutil.DamagedShort(regionImage[rec](t, WithCapacity(64))))
}

// TestDamagedZeros: all-zero files, with and without the ready word.
func TestDamagedZeros(t *testing.T) {
	openDamaged[rec](t, testutil.DamagedZeros())
}

// TestDamagedTruncated: a valid region cut short, anywhere past the ready
// word, is shorter than its header claims: ErrCorrupt. A longer file is
// fine.
func TestDamagedTruncated(t *testing.T) {
	valid := regionImage[rec](t, WithCapacity(64))
	openDamaged[rec](t, testutil.DamagedTruncated(t, valid))
	// A file larger than any region is refused before it is mapped.
	name := plantRegion(t, valid)
	if err := os.Truncate(shmPath(name), layout.MaxTotalSize+4096); err != nil {
		t.Fatal(err)
	}
	wantDamaged(t, "a sparse file larger than any region", openVerdict[rec](t, name), ErrCorrupt)
}

// TestDamagedHeaderFlip flips each byte of the immutable header of a valid
// region, all its bits and then its lowest bit: a version byte gives
// ErrIncompatible, any other ErrCorrupt (the magic, or the checksum).
func TestDamagedHeaderFlip(t *testing.T) {
	t.Run("spsc-raw", func(t *testing.T) {
		openDamaged[rec](t, testutil.DamagedHeaderFlips("spsc-raw", regionImage[rec](t, WithCapacity(64))))
	})
	t.Run("mpsc-bytes", func(t *testing.T) {
		img := regionImage[[]byte](t, WithMultiProducer(), WithProducers(3), WithCapacity(8), WithMaxMessageSize(100))
		openDamaged[[]byte](t, testutil.DamagedHeaderFlips("mpsc-bytes", img))
	})
}

// paramImages are the valid images testutil.DamagedParams edits.
func paramImages(t *testing.T) testutil.ParamImages {
	return testutil.ParamImages{
		SPSC:      regionImage[rec](t, WithCapacity(64)),
		MPSC:      regionImage[rec](t, WithCapacity(64), WithMultiProducer(), WithProducers(4)),
		WorkQueue: regionImage[rec](t, WithCapacity(64), WithMultiConsumer(), WithConsumers(4)),
		Broadcast: regionImage[rec](t, WithCapacity(64), WithBroadcast(WaitForSlowest), WithMultiProducer(), WithProducers(2), WithConsumers(3)),
	}
}

// TestDamagedParams: an otherwise valid header, re-sealed with a correct
// checksum, holding an impossible parameter: ErrCorrupt (another layout
// version: ErrIncompatible); a changed parameter that is still consistent
// opens.
func TestDamagedParams(t *testing.T) {
	for _, d := range testutil.DamagedParams(paramImages(t)) {
		name := plantRegion(t, d.Image)
		wantDamaged(t, d.What, openVerdict[rec](t, name), verdictErr[d.Want])
		if d.Want == testutil.Opens {
			continue
		}
		// OpenOrCreate finds the name taken and reports the same.
		c, err := OpenOrCreate[rec](name)
		if err == nil {
			c.Close()
		}
		wantDamaged(t, d.What+" (OpenOrCreate)", err, verdictErr[d.Want])
	}
}
