package shmchan

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/shmchan/shmchan/internal/testutil"
)

// Cross-process tests re-run this test binary as a helper process. The
// environment variable helperEnv names what the helper does; helperArgs
// holds its arguments, space separated. A helper talks to the test on its
// standard output, one line per event, written unbuffered so that a SIGKILL
// loses nothing it printed.
const (
	helperEnv  = "SHMCHAN_TEST_HELPER"
	helperArgs = "SHMCHAN_TEST_ARGS"
)

// rec is the value the cross-process tests send: a sequence number and a
// check word derived from it, so a torn or corrupted value is detected.
type rec struct {
	Seq uint64
	Sum uint64
}

func mkrec(i uint64) rec { return rec{Seq: i, Sum: i*0x9E3779B97F4A7C15 ^ 0x5bd1e995} }

func (r rec) ok() bool { return r == mkrec(r.Seq) }

// rec256 is the 256-byte value of the throughput benchmarks.
type rec256 struct {
	Seq uint64
	Sum uint64
	Pad [240]byte
}

// waitOpt maps a helper argument to a wait option.
func waitOpt(s string) Option {
	switch s {
	case "mq":
		return WithWait(WaitMQ)
	case "spin":
		return WithWait(WaitSpin)
	}
	return WithWait(WaitFutex)
}

var say = testutil.Say

// runHelper is the helper process's main. Its exit code is the test's
// verdict on the helper's side.
func runHelper(mode string, args []string) int {
	arg, num := testutil.Args(args).Str, testutil.Args(args).Num
	ctx := context.Background()
	fail := func(err error) int { return testutil.HelperFailed(mode, err) }
	switch mode {
	case "send": // name wait start count close(0/1) [cap]
		opts := []Option{waitOpt(arg(1))}
		if c := num(5); c > 0 {
			opts = append(opts, WithCapacity(int(c)))
		}
		c, err := OpenOrCreate[rec](arg(0), opts...)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		say("ready")
		start, n := num(2), num(3)
		for i := start; i < start+n; i++ {
			if err := c.Send(ctx, mkrec(i)); err != nil {
				return fail(err)
			}
		}
		if num(4) == 1 {
			if err := c.CloseSend(); err != nil {
				return fail(err)
			}
		}
		say("done")
		return 0
	case "recv": // name wait start count: receive and check count values
		c, err := OpenOrCreate[rec](arg(0), waitOpt(arg(1)))
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		say("ready")
		start, n := num(2), num(3)
		for i := start; i < start+n; i++ {
			v, err := c.Recv(ctx)
			if err != nil {
				return fail(err)
			}
			if !v.ok() || v.Seq != i {
				return fail(fmt.Errorf("got %+v, want seq %d", v, i))
			}
		}
		say("done")
		return 0
	case "report": // name wait pause: receive, print each seq; after pause values print "paused" and hang
		c, err := OpenOrCreate[rec](arg(0), waitOpt(arg(1)))
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		pause := num(2)
		for i := uint64(0); ; i++ {
			if pause > 0 && i == pause {
				say("paused")
				hang()
			}
			v, err := c.Recv(ctx)
			if err != nil {
				return fail(err)
			}
			if !v.ok() {
				return fail(fmt.Errorf("torn value %+v", v))
			}
			say("%d", v.Seq)
		}
	case "hold": // name role: take a role and keep it until killed
		c, err := Open[rec](arg(0))
		if err != nil {
			return fail(err)
		}
		if arg(1) == "recv" {
			_, err = c.TryRecv()
			if !errors.Is(err, ErrEmpty) {
				return fail(err)
			}
		} else if err := c.TrySend(mkrec(0)); err != nil {
			return fail(err)
		}
		say("holding")
		hang()
	case "sink": // name count [256]: receive count values (benchmarks)
		n := num(1)
		var err error
		if arg(2) == "256" {
			err = sink[rec256](arg(0), n)
		} else {
			err = sink[rec](arg(0), n)
		}
		if err != nil {
			return fail(err)
		}
		return 0

	// Fan-out helpers (work queue, broadcast): see fanout_proc_test.go.
	case "fan-recv": // name wait how out stuck pause gofile
		return fanRecv(args)
	case "fan-send": // name wait id how count out stuck gofile
		return fanSend(args)
	}
	if f, ok := extraHelpers[mode]; ok {
		return f(args)
	}
	return fail(fmt.Errorf("unknown helper mode"))
}

// extraHelpers holds helper modes defined by other test files (in their
// init functions), keyed by mode; each gets the helper's arguments and
// returns its exit code.
var extraHelpers = map[string]func(args []string) int{}

var hang = testutil.Hang

func sink[T any](name string, n uint64) error {
	c, err := Open[T](name)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.TryRecv(); err != nil && !errors.Is(err, ErrEmpty) {
		return err
	}
	say("ready")
	for i := uint64(1); i < n; i++ {
		if _, err := c.Recv(context.Background()); err != nil {
			return err
		}
	}
	return nil
}

// helper is a running helper process.
type helper = testutil.Proc

// spawn starts a helper and arranges for it to be killed and reaped when
// the test ends.
func spawn(t testing.TB, mode string, args ...any) *helper {
	t.Helper()
	return testutil.Helper(t, 1<<16, mode, args...)
}
