package testutil

import (
	"runtime/debug"
	"testing"
	"time"
)

// Bounded runs f in a goroutine of its own and returns its error. A panic
// in f fails the test, with f's stack; so does f still running after
// limit (a hang; f's goroutine is left behind). what names f in the
// messages.
func Bounded(t testing.TB, what string, limit time.Duration, f func() error) error {
	t.Helper()
	type result struct {
		err   error
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p, stack: debug.Stack()}
			}
		}()
		done <- result{err: f()}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("%s panicked: %v\n%s", what, r.panic, r.stack)
		}
		return r.err
	case <-time.After(limit):
		t.Fatalf("%s hung: still running after %v", what, limit)
	}
	return nil
}
