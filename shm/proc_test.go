package shm

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestProcStartTimeSelf(t *testing.T) {
	a, err := ProcStartTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("ProcStartTime(self) = %d, %v", a, err)
	}
	b, err := ProcStartTime(os.Getpid())
	if err != nil || b != a {
		t.Errorf("second ProcStartTime(self) = %d, %v; first was %d", b, err, a)
	}
	if init, err := ProcStartTime(1); err == nil && init > a {
		t.Errorf("pid 1 started at %d, after this process (%d)", init, a)
	}
}

func TestProcStartTimeDead(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	// No race-detector exit delay in the helper.
	cmd.Env = append(os.Environ(), helperEnv+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if v, err := ProcStartTime(cmd.Process.Pid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ProcStartTime of reaped pid %d = %d, %v; want fs.ErrNotExist", cmd.Process.Pid, v, err)
	}
	for _, pid := range []int{0, -1} {
		if _, err := ProcStartTime(pid); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("ProcStartTime(%d): %v", pid, err)
		}
	}
}

func TestParseStartTime(t *testing.T) {
	tail := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654321 20 21\n"
	for _, comm := range []string{"(sh)", "(a b)", "(x) S 1 2)", "())", "((()"} {
		got, err := parseStartTime([]byte("4242 " + comm + tail))
		if err != nil || got != 987654321 {
			t.Errorf("comm %s: %d, %v", comm, got, err)
		}
	}
	for _, bad := range []string{"", "4242 (sh) S 1 2", "4242 sh S", "4242 (sh)" + strings.Replace(tail, "987654321", "-5", 1)} {
		if _, err := parseStartTime([]byte(bad)); err == nil {
			t.Errorf("parseStartTime(%q) accepted", bad)
		}
	}
}
