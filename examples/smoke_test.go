package examples

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// build compiles ./NAME into a temporary directory.
func build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", name, err, out)
	}
	return bin
}

// run runs bin with args, wants exit status 0 and every expression of
// want in its output, and checks that it left no channel behind: the
// examples name their channels prefix-<pid>.
func run(t *testing.T, bin, prefix string, want []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		t.Errorf("%s %v: %v\n%s", filepath.Base(bin), args, err, out.String())
	}
	for _, re := range want {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("%s %v: no match for %s in:\n%s", filepath.Base(bin), args, re, out.String())
		}
	}
	if cmd.Process == nil {
		return
	}
	left, _ := filepath.Glob(filepath.Join("/dev/shm", prefix+strconv.Itoa(cmd.Process.Pid)+"*"))
	for _, l := range left {
		t.Errorf("%s left %s behind", filepath.Base(bin), l)
		os.Remove(l)
	}
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	bin := build(t, "pipeline")
	run(t, bin, "shmchan-pipeline-", []string{
		`1 source → work queue → 3 workers → MPSC → 1 sink, 5 processes`,
		`(?m)^worker 0 \(pid \d+\): \d+ values$`,
		`(?m)^worker 2 \(pid \d+\): \d+ values$`,
		`every value 0\.\.19999 arrived exactly once, every result checked`,
		`(?m)^pipeline: done$`,
	}, "-n", "20000", "-workers", "3")
}

func TestBroadcast(t *testing.T) {
	t.Parallel()
	bin := build(t, "broadcast")
	// WaitForSlowest: everyone gets everything, and the slow one makes the
	// publisher wait (a 1024-slot ring, 3000 values, 1ms sleeps every 50).
	run(t, bin, "shmchan-broadcast-", []string{
		`(?m)^subscriber 0: 3000 values in order`,
		`(?m)^subscriber 1: 3000 values in order`,
		`(?m)^subscriber 2 \(slow\): 3000 values in order`,
		`publisher: 3000 values .*found the ring full [1-9]\d* times`,
		`(?m)^broadcast: done$`,
	}, "-n", "3000", "-subscribers", "3")
	// DropOldest: the publisher never waits; the slow one misses values
	// and is told how many.
	run(t, bin, "shmchan-broadcast-", []string{
		`drop-oldest`,
		`publisher: 50000 values .*found the ring full 0 times`,
		`(?m)^subscriber 1 \(slow\): \d+ values in order, .*; \d+ missed, reported by \d+ lag errors$`,
		`(?m)^broadcast: done$`,
	}, "-n", "50000", "-subscribers", "2", "-drop")
}
