package bench

// Tests of shmchan bench. They never assert a speed: they check that every
// row is measured and reported, that the JSON and the chart are well
// formed, that a damaged value is caught, and that nothing is left behind.
// The peers are this test binary run again: TestMain does a peer's job when
// the bench's environment says so (IsPeer), and runs a whole bench, for
// TestInterrupt to stop, when testRunEnv says so.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/mq"
)

// testRunEnv makes the test binary run the bench as "shmchan bench -quick
// -runs 100 -v" would.
const testRunEnv = "SHMCHAN_BENCH_TEST_RUN"

func TestMain(m *testing.M) {
	if IsPeer() {
		os.Exit(RunPeer())
	}
	if os.Getenv(testRunEnv) != "" {
		cfg := Defaults(true)
		cfg.Runs, cfg.Verbose = 100, true
		os.Exit(Run(cfg, os.Stdout, os.Stderr))
	}
	// The leak checks, and the sweep of what a bench run in this process
	// leaves under its prefix (shmchan-bench-<pid>-).
	testutil.Main(m, testutil.Config{Prefix: "shmchan-bench"})
}

// leftovers lists (and removes) every region and queue that a bench
// run by process pid left behind.
func leftovers(pid int) []string {
	prefix := fmt.Sprintf("shmchan-bench-%d-", pid)
	var left []string
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			left = append(left, "/dev/shm/"+e.Name())
			os.Remove("/dev/shm/" + e.Name())
		}
	}
	// Queue names are prefix + kind + a sequence number; the doorbells of
	// a WaitMQ region are its name + ".rx" and ".tx". Unlink succeeds only
	// for a queue that is still there.
	for k := 1; k <= 3000; k++ {
		names := []string{fmt.Sprintf("%smq%d", prefix, k)}
		for _, kind := range []string{"shm", "ping", "pong"} {
			for _, suffix := range []string{".rx", ".tx"} {
				names = append(names, fmt.Sprintf("%s%s%d%s", prefix, kind, k, suffix))
			}
		}
		for _, n := range names {
			if mq.Unlink(n) == nil {
				left = append(left, "mq /"+n)
			}
		}
	}
	return left
}

func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole quick bench")
	}
	dir := t.TempDir()
	jsonPath, chartPath := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	var out, errb bytes.Buffer
	cfg := Defaults(true) // -quick -runs 2 -limit 0 -json ... -chart ...
	cfg.Runs, cfg.Limit, cfg.JSONPath, cfg.ChartPath = 2, 0, jsonPath, chartPath
	code := Run(cfg, &out, &errb)
	if code != 0 {
		t.Fatalf("bench -quick: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	table := out.String()
	t.Logf("bench -quick -runs 2:\n%s", table)
	for _, want := range []string{"Throughput, values per second", "Throughput, bytes per second", "Round trip of a 16-byte value", "Targets"} {
		if !strings.Contains(table, want) {
			t.Errorf("output has no %q", want)
		}
	}
	for _, row := range allRows() {
		if !strings.Contains(table, "\n  "+row.name+" ") {
			t.Errorf("the table has no row %q (%s)", row.name, row.key)
		}
	}
	if strings.Contains(table, "not measured") {
		t.Errorf("a target was not measured in a full quick run")
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var f jsonFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, b)
	}
	seen := map[string]bool{}
	for _, r := range f.Throughput {
		seen[r.Key] = true
		if r.NA != "" {
			if r.MsgPerSec != nil {
				t.Errorf("%s, %d B: n/a (%s) but has a rate", r.Key, r.Size, r.NA)
			}
			continue
		}
		if r.MsgPerSec == nil || r.MsgPerSec.Median <= 0 || len(r.MsgPerSec.Runs) != 2 || r.MBPerSec == nil {
			t.Errorf("%s, %d B: no rate, or not 2 runs: %+v", r.Key, r.Size, r.MsgPerSec)
		}
	}
	for _, l := range f.Latency {
		seen[l.Key] = true
		if l.P50ns == nil || l.P50ns.Median <= 0 || l.P999ns == nil || l.P999ns.Median < l.P50ns.Median {
			t.Errorf("%s: bad percentiles %+v .. %+v", l.Key, l.P50ns, l.P999ns)
		}
	}
	for _, row := range allRows() {
		if !seen[row.key] {
			t.Errorf("the JSON has no transport %q", row.key)
		}
	}
	if len(f.Targets) == 0 || f.Machine.CPUs == 0 || len(f.Config.Sizes) != 3 {
		t.Errorf("JSON: %d targets, machine %+v, sizes %v", len(f.Targets), f.Machine, f.Config.Sizes)
	}

	svg, err := os.ReadFile(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg ")) {
		t.Errorf("the chart does not start with <svg: %.40q", svg)
	}
	d := xml.NewDecoder(bytes.NewReader(svg))
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects < 20 {
		t.Errorf("the chart has %d rectangles; expected a bar per measured cell", rects)
	}

	if left := leftovers(os.Getpid()); len(left) > 0 {
		t.Errorf("the bench left behind: %v", left)
	}
}

func TestCheck(t *testing.T) {
	for _, size := range allSizes {
		words := size / 8
		good := make([]uint64, words)
		fill(good, 42)
		if err := check(good, 42, true); err != nil {
			t.Fatalf("%d B: a good value fails: %v", size, err)
		}
		// A stamped copy of another value is good too.
		other := append([]uint64(nil), good...)
		stamp(other, 43)
		if err := check(other, 43, true); err != nil {
			t.Fatalf("%d B: value 43 fails: %v", size, err)
		}
		damaged := func(name string, full bool, seq uint64, damage func(w []uint64)) {
			t.Helper()
			w := append([]uint64(nil), good...)
			damage(w)
			err := check(w, seq, full)
			var ve *verifyError
			if !errors.As(err, &ve) {
				t.Errorf("%d B, %s: check = %v, want a verification error", size, name, err)
			}
		}
		damaged("wrong sequence number", false, 41, func([]uint64) {})
		damaged("first word", false, 42, func(w []uint64) { w[0] ^= 1 })
		damaged("last word", false, 42, func(w []uint64) { w[words-1] ^= 1 << 40 })
		damaged("torn: head of 42, tail of 43", false, 42, func(w []uint64) { w[words-1] = other[words-1] })
		damaged("all zero", false, 0, func(w []uint64) { clear(w) })
		if m := midIndex(words); m > 0 {
			damaged("middle word", false, 42, func(w []uint64) { w[m] ^= 1 })
			damaged("torn: middle of 43", false, 42, func(w []uint64) { w[m] = other[m] })
		}
		if words > 3 {
			// A bulk word is checked only in a full check (every 256th value).
			damaged("bulk word, full check", true, 42, func(w []uint64) { w[1] ^= 1 })
			w := append([]uint64(nil), good...)
			w[1] ^= 1
			if err := check(w, 42, false); err != nil {
				t.Errorf("%d B: a bulk word is not meant to be checked in a quick check: %v", size, err)
			}
		}
	}
}

// TestCatchesCorruption has each sender damage one value on purpose
// and checks that the receiving side reports it, for every kind of receive
// loop the bench has.
func TestCatchesCorruption(t *testing.T) {
	e := &env{clean: newCleaner(), stderr: io.Discard}
	e.cfg.Budget, e.cfg.LatencyBudget, e.cfg.LatencySamples, e.cfg.corruptAt = 20*time.Millisecond, 50*time.Millisecond, 1000, 100
	defer e.clean.all()
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	fds0 := fds()
	rows := map[string]*row{}
	for _, r := range allRows() {
		rows[r.key] = r
	}
	for _, key := range []string{"shm-futex", "shm-mqwait", "shm-batch", "shm-inplace", "posix-mq", "pipe", "unix-batch", "bare-ring", "gochan"} {
		for _, size := range []int{16, 4 << 10} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := rows[key].run(ctx, e, size)
			cancel()
			var ve *verifyError
			if !errors.As(err, &ve) {
				t.Errorf("%s, %d B, value 100 damaged: got %v, want a verification error", key, size, err)
			} else if !strings.Contains(err.Error(), "value 100") {
				t.Errorf("%s, %d B: the error does not name value 100: %v", key, size, err)
			}
		}
	}
	// The fan-out rows run at 16 bytes: the damaged value is caught by a
	// receiving peer (the parent sends), or by the parent (the senders are
	// peers, each damaging its own value 100).
	for _, key := range []string{"fan-wq2", "fan-mq2", "fan-bc2", "fan-pipe2", "fan-mpsc2", "fan-mqw4"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := rows[key].run(ctx, e, 16)
		cancel()
		var ve *verifyError
		if !errors.As(err, &ve) {
			t.Errorf("%s, value 100 damaged: got %v, want a verification error", key, err)
		} else if !strings.Contains(err.Error(), "value 100") {
			t.Errorf("%s: the error does not name value 100: %v", key, err)
		} else {
			t.Logf("%s: %v", key, err)
		}
	}
	if left := leftovers(os.Getpid()); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if n := fds(); n > fds0+4 {
		t.Errorf("%d descriptors open before, %d after: the failed runs leak them", fds0, n)
	}
}

// TestVerificationFailsTheRun: a damaged value makes the whole bench
// fail loudly, with a non-zero exit.
func TestVerificationFailsTheRun(t *testing.T) {
	cfg := Defaults(false) // -only ^shm-futex$ -sizes 16 -runs 1 -time 20ms
	cfg.Only, cfg.Sizes, cfg.Runs = regexp.MustCompile("^shm-futex$"), []int{16}, 1
	cfg.Budget, cfg.LatencyBudget = 20*time.Millisecond, 80*time.Millisecond
	cfg.corruptAt = 1000
	var out, errb bytes.Buffer
	code := Run(cfg, &out, &errb)
	if code == 0 {
		t.Fatalf("exit 0 with a damaged value\n%s\n%s", out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "verification failed") || !strings.Contains(errb.String(), "value 1000") {
		t.Errorf("stderr does not say what failed:\n%s", errb.String())
	}
	if out.Len() != 0 {
		t.Errorf("a table was printed for a failed run:\n%s", out.String())
	}
}

// TestInterrupt: Ctrl-C in the middle of a run removes every region
// and queue the bench made, and exits 130.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench for a while")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self) // the bench -quick -runs 100 -v (TestMain)
	// The peers inherit the environment: the tag finds them in /proc.
	tag := fmt.Sprintf("SHMCHAN_BENCH_TEST_TAG=%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd.Env = append(os.Environ(), testRunEnv+"=1", tag)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt it once it is well into measuring (past the mq rows, which
	// come early in each run), while it still has shared objects open.
	lines := make(chan string, 1000)
	go func() {
		b := make([]byte, 0, 4096)
		buf := make([]byte, 4096)
		for {
			n, err := stderr.Read(buf)
			b = append(b, buf[:n]...)
			for {
				i := bytes.IndexByte(b, '\n')
				if i < 0 {
					break
				}
				lines <- string(b[:i])
				b = b[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	seen := 0
	deadline := time.After(60 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				break wait
			}
			if strings.Contains(l, "] ") {
				seen++
			}
			if seen == 15 {
				break wait
			}
		case <-deadline:
			break wait
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("after SIGINT: %v, want exit status 130", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Errorf("killed by %v instead of exiting", ws.Signal())
	}
	if left := leftovers(cmd.Process.Pid); len(left) > 0 {
		t.Errorf("left behind after SIGINT: %v", left)
	}
	// Its peers are gone too (killed; give the kernel a moment to reap).
	for try := 0; ; try++ {
		var alive []string
		procs, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(tag+"\x00")) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			break
		}
		if try == 50 {
			t.Errorf("peers still running after SIGINT: %v", alive)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestParseSize(t *testing.T) {
	for _, s := range []string{"16", "256", "4k", "64K", "1m", "1048576"} {
		if _, err := ParseSize(s); err != nil {
			t.Errorf("ParseSize(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "17", "2m", "k", "-16"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}

// TestCleaner: what the bench made is removed, and its children are
// killed, by the cleaner that runs on return, on error and on a signal.
func TestCleaner(t *testing.T) {
	e := &env{clean: newCleaner(), stderr: io.Discard}
	region := e.newName("shm")
	e.clean.addShm(region)
	c, err := shmchan.Create[[2]uint64](region, shmchan.WithWait(shmchan.WaitMQ))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	queue, q, err := mqCreate(e, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	e.clean.addProc(child.Process)

	e.clean.all()

	if _, err := os.Stat("/dev/shm/" + region); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("region still there: %v", err)
	}
	for _, n := range []string{queue, region + ".rx", region + ".tx"} {
		if err := mq.Unlink(n); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("queue %s still there: %v", n, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the child exited normally: it was not killed")
		}
	case <-time.After(10 * time.Second):
		child.Process.Kill()
		t.Error("the child is still running")
	}
}
