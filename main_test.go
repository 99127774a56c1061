package shmchan

import (
	"testing"

	"github.com/shmchan/shmchan/internal/testutil"
)

func testPrefix() string { return testutil.Prefix() }

// testName returns a name unique to this process and test, and removes the
// region (and any doorbells) when the test ends, whatever happened.
func testName(t testing.TB) string { return testutil.Name(t) }

// testChan creates a channel of T with opts at a fresh name (testName); it
// is closed when the test ends.
func testChan[T any](t *testing.T, opts ...Option) (string, *Chan[T]) {
	t.Helper()
	name := testName(t)
	c, err := Create[T](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return name, c
}

// testEndpoints is testChan with the channel's exclusive Sender and
// Receiver taken; they are released when the test ends, before the channel
// is closed.
func testEndpoints[T any](t *testing.T, opts ...Option) (string, *Chan[T], *Sender[T], *Receiver[T]) {
	t.Helper()
	name, c := testChan[T](t, opts...)
	tx, err := c.Sender()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Release)
	rx, err := c.Receiver()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rx.Release)
	return name, c, tx, rx
}

// TestMain runs the helper processes (helper_test.go), and checks that
// the tests leaked nothing: goroutines, descriptors, mappings, regions,
// doorbells (testutil.Main).
func TestMain(m *testing.M) {
	testutil.Main(m, testutil.Config{
		Prefix: "shmchan-test",
		Bells: func(name string) []string {
			b := bellNames(name)
			return b[:]
		},
		Remove:    func(_ testing.TB, name string) { Unlink(name) },
		HelperEnv: helperEnv,
		ArgsEnv:   helperArgs,
		Helper:    runHelper,
	})
}
