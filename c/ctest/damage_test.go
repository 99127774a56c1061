package ctest_test

// Every damaged region of the root package's damage tests (damage_test.go:
// random bytes, short files, zeros, truncations, flipped header bytes,
// impossible parameters), opened from C: shmchan_open gives the code that
// matches the error Go's Open gives, and Go's Open, run on the same bytes,
// agrees. Plus what only the opening rules decide: a foreign owner, things
// that are not regular files, and the creator's mode-0 window.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/layout"
)

// C codes (shmchan.h).
const (
	cOK           = 0
	cECORRUPT     = -5
	cEINCOMPATIBL = -6
	cENOENT       = -8
	cEPERM        = -14
)

func shmPath(name string) string { return "/dev/shm/" + name }

// regionImage creates a region with opts and returns its bytes.
func regionImage[T any](t *testing.T, opts ...shmchan.Option) []byte {
	t.Helper()
	name := testName(t)
	c, err := shmchan.Create[T](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(shmPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cCode is the C code each verdict of a damaged region is.
var cCode = map[testutil.Verdict]int{testutil.Opens: cOK, testutil.Corrupt: cECORRUPT, testutil.Incompatible: cEINCOMPATIBL}

// damageCases are the root package's damaged regions (damage_test.go,
// from testutil), with work queue and broadcast header flips besides.
func damageCases(t *testing.T) []testutil.Damaged {
	valid := regionImage[rec](t, shmchan.WithCapacity(64))
	cs := testutil.DamagedRandom()
	cs = append(cs, testutil.DamagedShort(valid)...)
	cs = append(cs, testutil.DamagedZeros()...)
	cs = append(cs, testutil.DamagedTruncated(t, valid)...)
	for _, k := range []struct {
		name string
		img  []byte
	}{
		{"spsc-raw", valid},
		{"mpsc-bytes", regionImage[[]byte](t, shmchan.WithMultiProducer(), shmchan.WithProducers(3), shmchan.WithCapacity(8), shmchan.WithMaxMessageSize(100))},
		{"workqueue-raw", regionImage[rec](t, shmchan.WithMultiConsumer(), shmchan.WithConsumers(3), shmchan.WithCapacity(16))},
		{"broadcast-drop-multi", regionImage[[]byte](t, shmchan.WithBroadcast(shmchan.DropOldest), shmchan.WithMultiProducer(),
			shmchan.WithProducers(2), shmchan.WithConsumers(5), shmchan.WithCapacity(8), shmchan.WithMaxMessageSize(40))},
	} {
		cs = append(cs, testutil.DamagedHeaderFlips(k.name, k.img)...)
	}
	return append(cs, testutil.DamagedParams(testutil.ParamImages{
		SPSC:      valid,
		MPSC:      regionImage[rec](t, shmchan.WithCapacity(64), shmchan.WithMultiProducer(), shmchan.WithProducers(4)),
		WorkQueue: regionImage[rec](t, shmchan.WithCapacity(64), shmchan.WithMultiConsumer(), shmchan.WithConsumers(4)),
		Broadcast: regionImage[rec](t, shmchan.WithCapacity(64), shmchan.WithBroadcast(shmchan.WaitForSlowest),
			shmchan.WithMultiProducer(), shmchan.WithProducers(2), shmchan.WithConsumers(3)),
	})...)
}

// goVerdict opens name from Go and maps the result to a C code.
func goVerdict(name string) int {
	c, err := shmchan.Open[rec](name)
	if err == nil {
		c.Close()
		return cOK
	}
	if errors.Is(err, shmchan.ErrTypeMismatch) {
		return cOK // the header itself was accepted (the []byte image)
	}
	switch {
	case errors.Is(err, shmchan.ErrCorrupt):
		return cECORRUPT
	case errors.Is(err, shmchan.ErrIncompatible):
		return cEINCOMPATIBL
	}
	return 1000 // anything else: never what a case wants
}

// openFromC opens every name in one C process and returns name → code and
// how long each open took.
func openFromC(t *testing.T, names []string, args ...string) (map[string]int, map[string]time.Duration) {
	codes, took, _ := openFromCWhy(t, names, args...)
	return codes, took
}

// openFromCWhy is openFromC with shmchan_last_error's detail of each open.
func openFromCWhy(t *testing.T, names []string, args ...string) (map[string]int, map[string]time.Duration, map[string]string) {
	t.Helper()
	cmd := exec.Command(peerBinary(t), append([]string{"open"}, args...)...)
	cmd.Stdin = strings.NewReader(strings.Join(names, "\n") + "\n")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("C opener: %v", err)
	}
	codes, took, why := map[string]int{}, map[string]time.Duration{}, map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) == 3 {
			f = append(f, "") // no detail
		}
		if len(f) != 4 {
			t.Fatalf("C opener printed %q", l)
		}
		codes[f[0]], _ = strconv.Atoi(f[1])
		ms, _ := strconv.Atoi(f[2])
		took[f[0]] = time.Duration(ms) * time.Millisecond
		why[f[0]] = f[3]
	}
	return codes, took, why
}

func plant(t *testing.T, b []byte) string {
	t.Helper()
	name := testName(t)
	if err := os.WriteFile(shmPath(name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestDamagedFromC(t *testing.T) {
	cases := damageCases(t)
	byName := map[string]testutil.Damaged{}
	var fast []string
	for _, c := range cases {
		if c.Slow {
			continue
		}
		name := plant(t, c.Image)
		byName[name] = c
		fast = append(fast, name)
	}
	// A file larger than any region, refused before it is mapped.
	big := plant(t, regionImage[rec](t, shmchan.WithCapacity(64)))
	if err := os.Truncate(shmPath(big), layout.MaxTotalSize+4096); err != nil {
		t.Fatal(err)
	}
	byName[big] = testutil.Damaged{What: "a sparse file larger than any region", Want: testutil.Corrupt}
	fast = append(fast, big)

	codes, took, why := openFromCWhy(t, fast)
	for _, name := range fast {
		c := byName[name]
		want := cCode[c.Want]
		got, ok := codes[name]
		if !ok {
			t.Errorf("%s: no answer from C", c.What)
			continue
		}
		if got != want {
			t.Errorf("%s: C open gave %d, want %d", c.What, got, want)
		}
		if got != cOK && why[name] == "" {
			t.Errorf("%s: C open gave %d and no detail", c.What, got)
		}
		if c.HasVersion {
			if want := fmt.Sprintf("layout version %d, this library reads version %d", c.Version, layout.Version); why[name] != want {
				t.Errorf("%s: C says %q, want %q", c.What, why[name], want)
			}
		}
		if took[name] > 500*time.Millisecond {
			t.Errorf("%s: C open took %v", c.What, took[name])
		}
		if g := goVerdict(name); g != want {
			t.Errorf("%s: Go open gave %d, want %d (the C expectations must be Go's)", c.What, g, want)
		}
	}
	t.Logf("%d damaged regions opened from C", len(fast))

	// The slow ones, each in its own C process, in parallel: the opener
	// waits about a second for the creator, then reports ECORRUPT.
	var wg sync.WaitGroup
	for _, c := range cases {
		if !c.Slow {
			continue
		}
		name := plant(t, c.Image)
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes, took := openFromC(t, []string{name})
			if want := cCode[c.Want]; codes[name] != want {
				t.Errorf("%s: C open gave %d, want %d", c.What, codes[name], want)
			}
			if took[name] < 900*time.Millisecond || took[name] > 3*time.Second {
				t.Errorf("%s: C open gave up after %v, want about a second", c.What, took[name])
			}
		}()
	}
	wg.Wait()
}

// TestOpenRulesFromC: names that are not regular files, and a region owned
// by another user (EPERM unless the flag allows it).
func TestOpenRulesFromC(t *testing.T) {
	valid := regionImage[[]byte](t)
	dir, fifo, link, absent := testName(t), testName(t), testName(t), testName(t)
	if err := os.Mkdir(shmPath(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(shmPath(dir)) })
	if err := syscall.Mkfifo(shmPath(fifo), 0o600); err != nil {
		t.Fatal(err)
	}
	target := plant(t, valid)
	if err := os.Symlink(shmPath(target), shmPath(link)); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{dir: cECORRUPT, fifo: cECORRUPT, link: cECORRUPT, absent: cENOENT, target: cOK, "/" + target: cOK}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	codes, _ := openFromC(t, names)
	for n, w := range want {
		if codes[n] != w {
			t.Errorf("%s: C open gave %d, want %d", n, codes[n], w)
		}
	}

	if os.Geteuid() != 0 {
		t.Skip("the foreign-owner cases need root (to chown the region)")
	}
	foreign := plant(t, valid)
	if err := os.Chown(shmPath(foreign), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if codes, _ := openFromC(t, []string{foreign}); codes[foreign] != cEPERM {
		t.Errorf("a region owned by uid 65534: C open gave %d, want EPERM (%d)", codes[foreign], cEPERM)
	}
	if codes, _ := openFromC(t, []string{foreign}, "foreign=1"); codes[foreign] != cOK {
		t.Errorf("a region owned by uid 65534, with SHMCHAN_ALLOW_FOREIGN_OWNER: C open gave %d", codes[foreign])
	}
}

// TestOpenDuringCreateFromC: an opener that is not root, racing a creator
// between its exclusive create (mode 0, so open gets EACCES) and its
// fchmod, waits for the region instead of failing.
func TestOpenDuringCreateFromC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the C opener as another user")
	}
	valid := regionImage[[]byte](t, shmchan.WithPerm(0o666))
	name := testName(t)
	f, err := os.OpenFile(shmPath(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Chmod(0); err != nil { // as a creator does, whatever the umask
		t.Fatal(err)
	}
	// The opener runs as nobody, so the binary must be reachable for it.
	os.Chmod(buildDir, 0o755)
	cmd := exec.Command(peerBinary(t), "open", "foreign=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stdin = strings.NewReader(name + "\n")
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the opener is in its EACCES wait now
	if _, err := f.WriteAt(valid, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o666); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	res := strings.Fields(out.String())
	if len(res) != 3 || res[1] != "0" {
		t.Fatalf("C opener racing the creator's fchmod printed %q, want success", out.String())
	}
	if ms, _ := strconv.Atoi(res[2]); ms < 150 {
		t.Fatalf("the opener succeeded after %d ms: it did not meet the mode-0 window", ms)
	}
}
