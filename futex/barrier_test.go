package futex

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestRegisterBarrier(t *testing.T) {
	if !RegisterBarrier() {
		t.Fatalf("RegisterBarrier = false; this kernel should support membarrier global expedited: %v", Barrier())
	}
	if !RegisterBarrier() {
		t.Fatal("second RegisterBarrier = false")
	}
	for range 3 {
		if err := Barrier(); err != nil {
			t.Fatalf("Barrier: %v", err)
		}
	}
}

// TestBarrierBeforeRegister runs in a fresh helper process, where nothing
// has registered yet.
func TestBarrierBeforeRegister(t *testing.T) {
	out, err := runHelper(t, modeUnregistered, nil)
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

func helperUnregistered() int {
	if err := Barrier(); !errors.Is(err, ErrNoBarrier) {
		fmt.Fprintln(os.Stderr, "Barrier before RegisterBarrier:", err)
		return 1
	}
	if !RegisterBarrier() {
		fmt.Fprintln(os.Stderr, "RegisterBarrier failed")
		return 1
	}
	if err := Barrier(); err != nil {
		fmt.Fprintln(os.Stderr, "Barrier after RegisterBarrier:", err)
		return 1
	}
	return 0
}
