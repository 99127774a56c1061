package futex

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProbeSharedMapping(t *testing.T) {
	f, err := os.CreateTemp("", "futex-probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := Probe(mem[64:]); err != nil {
		t.Fatalf("Probe on a shared mapping: %v", err)
	}
	if mem[64] != 7 {
		t.Errorf("the word holds %d after the probe, want the 7 it waited on", mem[64])
	}
	if err := Probe(mem[65:]); !errors.Is(err, ErrUnaligned) {
		t.Errorf("Probe on an unaligned word: %v, want ErrUnaligned", err)
	}
	if err := Probe(mem[:3]); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Probe on 3 bytes: %v, want fs.ErrInvalid", err)
	}
	if err := Probe(nil); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Probe on nothing: %v, want fs.ErrInvalid", err)
	}
}
