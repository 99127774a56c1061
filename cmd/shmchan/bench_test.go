package main

// Tests of the bench command's flags, and of the real tool running the
// bench with its peers (the bench itself is tested in internal/bench).

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestBenchFlags(t *testing.T) {
	var errb bytes.Buffer
	if code := benchMain([]string{"-runs", "0"}, io.Discard, &errb); code != 2 {
		t.Errorf("-runs 0: exit %d, want 2", code)
	}
	if code := benchMain([]string{"extra"}, io.Discard, &errb); code != 2 {
		t.Errorf("an extra argument: exit %d, want 2", code)
	}
	if code := benchMain([]string{"-sizes", "16,17"}, io.Discard, &errb); code != 2 {
		t.Errorf("-sizes 16,17: exit %d, want 2", code)
	}
	if cfg, _, ok := benchParseFlags([]string{"-quick"}, &errb); !ok || cfg.Runs != 3 || cfg.Limit != 15*time.Second || len(cfg.Sizes) != 3 {
		t.Errorf("-quick: %+v", cfg)
	}
	if cfg, _, ok := benchParseFlags([]string{"-quick", "-runs", "4", "-limit", "0", "-time", "10ms"}, &errb); !ok || cfg.Runs != 4 || cfg.Limit != 0 || cfg.Budget != 10*time.Millisecond {
		t.Errorf("-quick with -runs, -limit, -time: %+v", cfg)
	}
	if code := benchMain([]string{"-h"}, io.Discard, &errb); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	if code := benchMain([]string{"-only", "no such row"}, io.Discard, &errb); code != 1 {
		t.Errorf("-only matching nothing: exit %d, want 1", code)
	}
}

// TestBenchPeers runs "shmchan bench" for two rows, a shmchan one and a
// pipe one: the tool must start itself again as their peers.
func TestBenchPeers(t *testing.T) {
	var out, errb bytes.Buffer
	cmd := exec.Command(binPath, "bench", "-only", "^(shm-futex|pipe)$", "-sizes", "16", "-runs", "1", "-time", "20ms")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("shmchan bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	for _, row := range []string{"shmchan, futex wait (default)", "pipe"} {
		if !strings.Contains(out.String(), "\n  "+row+" ") {
			t.Errorf("the table has no row %q:\n%s", row, out.String())
		}
	}
	prefix := fmt.Sprintf("shmchan-bench-%d-", cmd.Process.Pid)
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("left behind: /dev/shm/%s", e.Name())
			os.Remove("/dev/shm/" + e.Name())
		}
	}
}
