package main

// These tests build the real shmchan binary and run it against regions made
// by the test process and by helper processes (this test binary run again,
// with toolsHelperEnv naming what it does), then check what it prints.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/mq"
)

const (
	toolsHelperEnv  = "SHMCHAN_TOOLS_HELPER"
	toolsHelperArgs = "SHMCHAN_TOOLS_ARGS"
)

// rec is the value the test regions hold.
type rec struct {
	Seq uint64
	At  int64
	V   [4]uint32
}

var binPath string // the built tool

func namePrefix() string { return testutil.Prefix() }

// newName returns a fresh region name and removes the region (and any
// doorbells) when the test ends.
func newName(t *testing.T) string { return testutil.Name(t) }

// TestMain builds the tool, runs the helper processes (toolsHelper), and
// checks that the tests leaked nothing (testutil.Main).
func TestMain(m *testing.M) {
	var dir string
	testutil.Main(m, testutil.Config{
		Prefix: "shmchan-test",
		Bells: func(name string) []string {
			b := region.BellNames(name)
			return b[:]
		},
		Remove:    func(_ testing.TB, name string) { shmchan.Unlink(name) },
		HelperEnv: toolsHelperEnv,
		ArgsEnv:   toolsHelperArgs,
		Helper:    toolsHelper,
		Setup: func() error {
			var err error
			if dir, err = os.MkdirTemp("", "shmchan-tool-"); err != nil {
				return err
			}
			binPath = filepath.Join(dir, "shmchan")
			build := exec.Command("go", "build", "-o", binPath, ".")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("building the tool: %w", err)
			}
			return nil
		},
		Teardown: func() { os.RemoveAll(dir) },
	})
}

// toolsHelper is a helper process's main.
//
//	hold NAME ROLES N [OPTION...]: open or create NAME (capacity 64); with
//	  "join" in ROLES take the receiver role with a TryRecv first (a
//	  broadcast receiver joins there); with "send" in ROLES send N values,
//	  with "recv" in ROLES receive N values (or, for N = 0, take the
//	  receiver role with a TryRecv; a broadcast's lag errors are skipped);
//	  with "hold" in ROLES then start one more RecvFunc and stay inside it
//	  (a work-queue receiver holding a claim); print "ready"; then with
//	  "exit" in ROLES exit at once, without closing (the roles' holder is
//	  dead), else keep everything until standard input closes. OPTIONs:
//	  "mq" waits on message queues; "wq" makes a work queue, "bcast" a
//	  wait-for-slowest broadcast, "drop" a drop-oldest one (with many
//	  senders and 4 receiver entries).
func toolsHelper(mode string, args []string) int {
	fail := func(err error) int { return testutil.HelperFailed(mode, err) }
	if mode != "hold" || len(args) < 3 {
		return fail(fmt.Errorf("bad helper call %q %q", mode, args))
	}
	name, roles := args[0], args[1]
	n, _ := strconv.Atoi(args[2])
	opts := []shmchan.Option{shmchan.WithCapacity(64)}
	for _, o := range args[3:] {
		switch o {
		case "mq":
			opts = append(opts, shmchan.WithWait(shmchan.WaitMQ))
		case "wq":
			opts = append(opts, shmchan.WithMultiConsumer(), shmchan.WithMultiProducer(), shmchan.WithConsumers(4), shmchan.WithProducers(4))
		case "bcast":
			opts = append(opts, shmchan.WithBroadcast(shmchan.WaitForSlowest), shmchan.WithMultiProducer(), shmchan.WithConsumers(4), shmchan.WithProducers(4))
		case "drop":
			opts = append(opts, shmchan.WithBroadcast(shmchan.DropOldest), shmchan.WithMultiProducer(), shmchan.WithConsumers(4), shmchan.WithProducers(4))
		default:
			return fail(fmt.Errorf("unknown option %q", o))
		}
	}
	c, err := shmchan.OpenOrCreate[rec](name, opts...)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if strings.Contains(roles, "join") {
		if _, err := c.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
			return fail(fmt.Errorf("TryRecv: %v", err))
		}
	}
	if strings.Contains(roles, "send") {
		for i := range n {
			if err := c.Send(ctx, rec{Seq: uint64(i)}); err != nil {
				return fail(err)
			}
		}
	}
	if strings.Contains(roles, "recv") {
		if n == 0 {
			if _, err := c.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
				return fail(fmt.Errorf("TryRecv: %v", err))
			}
		}
		for got := 0; got < n; {
			_, err := c.Recv(ctx)
			switch {
			case errors.Is(err, shmchan.ErrLagged):
			case err != nil:
				return fail(err)
			default:
				got++
			}
		}
	}
	ready := func() int {
		fmt.Println("ready")
		if strings.Contains(roles, "exit") {
			os.Exit(0) // no Close: the kernel drops the role locks, the pids stay
		}
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	if strings.Contains(roles, "hold") {
		if err := c.RecvFunc(ctx, func(*rec) { ready() }); err != nil {
			return fail(err)
		}
	} else {
		ready()
	}
	c.Close()
	return 0
}

// startHolder runs a "hold" helper and waits until it is ready. It returns
// the helper's pid; the helper is stopped when the test ends. For roles
// with "exit" it waits for the helper to have exited.
func startHolder(t *testing.T, args ...string) int {
	t.Helper()
	cmd, err := testutil.HelperCommand(context.Background(), "hold", strings.Join(args, " "))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A helper that never gets ready is killed, so a test cannot hang.
	timer := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	timer.Stop()
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper %v: got %q, %v", args, line, err)
	}
	if strings.Contains(args[1], "exit") {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %v: %v", args, err)
		}
		return cmd.Process.Pid
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd.Process.Pid
}

// tool runs the built binary and returns its standard output, standard
// error and exit code.
func tool(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("shmchan %v: %v", args, err)
	}
	if strings.Contains(errOut.String(), "panic") || strings.Contains(errOut.String(), "goroutine ") {
		t.Fatalf("shmchan %v crashed:\n%s", args, errOut.String())
	}
	return out.String(), errOut.String(), code
}

// lsLine returns the ls line of the region name, split in fields.
func lsLine(t *testing.T, out, name string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("ls does not list %s:\n%s", name, out)
	return nil
}

func exists(name string) bool {
	_, err := os.Lstat("/dev/shm/" + name)
	return err == nil
}

// busyRegion makes a region with capacity 64 where the test process holds
// the sender role after sending 5 values and a helper holds the receiver
// role after receiving 2: fill 3, both roles alive. It returns the
// helper's pid.
func busyRegion(t *testing.T, name string) int {
	t.Helper()
	c, err := shmchan.Create[rec](name, shmchan.WithCapacity(64))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := range 5 {
		if err := c.Send(context.Background(), rec{Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return startHolder(t, name, "recv", "2")
}

func TestLs(t *testing.T) {
	name := newName(t)
	helper := busyRegion(t, name)
	out, errOut, code := tool(t, "ls")
	if code != 0 {
		t.Fatalf("ls: exit %d, %s", code, errOut)
	}
	// NAME TYPE CODEC FINGERPRINT MODE CAP FILL SIZE OWNER PERM STATE ROLES...
	f := lsLine(t, out, name)
	if len(f) < 12 {
		t.Fatalf("short ls line %q", f)
	}
	if f[1] != "main.rec" || f[2] != "raw" || f[4] != "SPSC" || f[5] != "64" || f[6] != "3" || f[9] != "-rw-------" || f[10] != "open" {
		t.Errorf("ls line %q: want main.rec raw SPSC cap 64 fill 3 -rw------- open", f)
	}
	roles := strings.Join(f[11:], " ")
	for _, want := range []string{
		fmt.Sprintf("recv %d alive", helper),
		fmt.Sprintf("send %d alive", os.Getpid()),
	} {
		if !strings.Contains(roles, want) {
			t.Errorf("roles %q lack %q", roles, want)
		}
	}

	out, _, code = tool(t, "ls", "-json")
	if code != 0 {
		t.Fatalf("ls -json: exit %d", code)
	}
	var list []struct {
		Name   string
		Valid  bool
		State  string
		Fill   *uint64
		Header struct {
			Type, Codec, Mode, Fingerprint string
			Capacity                       uint64
		}
		Roles []struct {
			Role  string
			PID   int
			Alive bool
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("ls -json does not parse: %v\n%s", err, out)
	}
	found := false
	for _, r := range list {
		if r.Name != name {
			continue
		}
		found = true
		if !r.Valid || r.State != "open" || r.Fill == nil || *r.Fill != 3 || r.Header.Capacity != 64 ||
			r.Header.Type != "main.rec" || r.Header.Mode != "SPSC" || len(r.Header.Fingerprint) != 16 {
			t.Errorf("ls -json entry: %+v", r)
		}
		alive := map[string]int{}
		for _, ro := range r.Roles {
			if ro.Alive {
				alive[ro.Role] = ro.PID
			}
		}
		if alive["receiver"] != helper || alive["sender"] != os.Getpid() {
			t.Errorf("ls -json roles %+v: want receiver %d, sender %d alive", r.Roles, helper, os.Getpid())
		}
	}
	if !found {
		t.Errorf("ls -json does not list %s", name)
	}
}

func TestStat(t *testing.T) {
	name := newName(t)
	helper := busyRegion(t, name)
	for _, arg := range []string{name, "/" + name, "/dev/shm/" + name} {
		out, errOut, code := tool(t, "stat", arg)
		if code != 0 {
			t.Fatalf("stat %s: exit %d, %s", arg, code, errOut)
		}
		for _, re := range []string{
			`valid\s+yes`,
			`magic\s+"SHMCHAN\\x00"`,
			`version\s+2 `,
			`mode\s+SPSC`,
			`wait\s+futex`,
			`capacity\s+64 slots`,
			`type\s+main\.rec`,
			`codec\s+raw`,
			`fingerprint\s+[0-9a-f]{16}\n`,
			`checksum\s+[0-9a-f]{16} \(ok\)`,
			fmt.Sprintf(`creator\s+pid %d `, os.Getpid()),
			`tail\s+5\n`,
			`head\s+2\n`,
			`fill\s+3 of 64`,
			`sent\s+5\n`,
			`received\s+2\n`,
			`abandoned\s+0\n`,
			`receiver sleeps\s+\d+\n`,
			fmt.Sprintf(`0\s+receiver\s+%d\s+alive`, helper),
			fmt.Sprintf(`1\s+sender\s+%d\s+alive\s.*\s-\s+0\s+no`, os.Getpid()),
			fmt.Sprintf(`attached\n  pids .*\b%d\b`, helper),
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("stat %s: no match for %s in:\n%s", arg, re, out)
			}
		}
	}
	out, _, code := tool(t, "stat", "-json", name)
	var r struct {
		Valid    bool
		Counters struct {
			Sent, Received uint64
			Closed         bool
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("stat -json: exit %d, %v\n%s", code, err, out)
	}
	if !r.Valid || r.Counters.Sent != 5 || r.Counters.Received != 2 || r.Counters.Closed {
		t.Errorf("stat -json: %+v", r)
	}
	if _, errOut, code := tool(t, "stat", namePrefix()+"absent"); code != 1 || !strings.Contains(errOut, "no such region") {
		t.Errorf("stat of an absent region: exit %d, %q", code, errOut)
	}
}

func TestMPSC(t *testing.T) {
	name := newName(t)
	for i := range 2 { // two handles: two sender entries
		c, err := shmchan.OpenOrCreate[rec](name, shmchan.WithMultiProducer(), shmchan.WithProducers(4), shmchan.WithCapacity(64))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for j := range 2 + i {
			if err := c.TrySend(rec{Seq: uint64(j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	helper := startHolder(t, name, "recv", "1")
	out, _, code := tool(t, "ls")
	f := lsLine(t, out, name)
	if code != 0 || f[4] != "MPSC" || f[6] != "4" {
		t.Errorf("ls of an MPSC region: exit %d, %q", code, f)
	}
	roles := strings.Join(f[11:], " ")
	want := fmt.Sprintf("recv %d alive, send#1 %d alive, send#2 %d alive", helper, os.Getpid(), os.Getpid())
	if roles != want {
		t.Errorf("ls roles %q, want %q", roles, want)
	}
	out, _, code = tool(t, "stat", name)
	for _, re := range []string{
		`mode\s+MPSC`, `producers\s+4 sender entries`, `sent\s+5\n`, `received\s+1\n`,
		fmt.Sprintf(`1\s+sender\s+%d\s+alive\s.*\s2\s+0\s+no`, os.Getpid()),
		fmt.Sprintf(`2\s+sender\s+%d\s+alive\s.*\s3\s+0\s+no`, os.Getpid()),
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("stat: exit %d, no match for %s in:\n%s", code, re, out)
		}
	}
}

func TestDoorbells(t *testing.T) {
	name := newName(t)
	startHolder(t, name, "recv", "0", "mq")
	out, errOut, code := tool(t, "stat", name)
	if code != 0 {
		t.Fatalf("stat: exit %d, %s", code, errOut)
	}
	for _, re := range []string{`wait\s+mq`, `/` + name + `\.rx: exists, \d+ of \d+ pending`, `/` + name + `\.tx: exists`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no match for %s in:\n%s", re, out)
		}
	}
	if _, _, code := tool(t, "rm", "-f", name); code != 0 {
		t.Fatalf("rm -f: exit %d", code)
	}
	for _, b := range []string{name + ".rx", name + ".tx"} {
		if q, err := mq.Open(b, os.O_RDONLY, 0, nil); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				q.Close()
			}
			t.Errorf("doorbell %s after rm: %v", b, err)
		}
	}
}

// damage writes b at off into the region's file.
func damage(t *testing.T, name string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile("/dev/shm/"+name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func quietRegion(t *testing.T, name string) {
	t.Helper()
	c, err := shmchan.Create[rec](name, shmchan.WithCapacity(64))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestDamaged(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		what  string
		spoil func(t *testing.T, name string)
		want  string // in stat's output and after ls's table
	}{
		{"checksum", func(t *testing.T, name string) {
			damage(t, name, layout.OffTypeName, []byte("X"))
		}, "header checksum"},
		{"version", func(t *testing.T, name string) {
			damage(t, name, layout.OffVersion, []byte{9})
		}, "layout version 9"},
		{"short header", func(t *testing.T, name string) {
			if err := os.Truncate("/dev/shm/"+name, 100); err != nil {
				t.Fatal(err)
			}
		}, "shorter than the 256-byte header"},
		{"truncated", func(t *testing.T, name string) {
			if err := os.Truncate("/dev/shm/"+name, 300); err != nil {
				t.Fatal(err)
			}
		}, "file is 300 bytes, header claims"},
		{"hostile producers", func(t *testing.T, name string) {
			// A header that checksums but claims 2^32-1 sender entries.
			b, _ := os.ReadFile("/dev/shm/" + name)
			le.PutUint32(b[layout.OffProducers:], ^uint32(0))
			le.PutUint64(b[layout.OffChecksum:], layout.Checksum(b))
			damage(t, name, 0, b[:layout.HeaderSize])
		}, "4294967295 sender entries"},
		{"not ready", func(t *testing.T, name string) {
			damage(t, name, layout.OffReady, []byte{0, 0, 0, 0})
		}, "ready word not set"},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			name := newName(t)
			quietRegion(t, name)
			tc.spoil(t, name)
			out, _, code := tool(t, "stat", name)
			if code != 1 || !regexp.MustCompile(`valid\s+NO: `).MatchString(out) || !strings.Contains(out, tc.want) {
				t.Errorf("stat: exit %d, want 1 and %q in:\n%s", code, tc.want, out)
			}
			out, errOut, code := tool(t, "ls")
			if code != 0 {
				t.Fatalf("ls: exit %d, %s", code, errOut)
			}
			if f := lsLine(t, out, name); f[1] != "?" {
				t.Errorf("ls line of a damaged region: %q", f)
			}
			if !strings.Contains(out, name+": ") || !strings.Contains(out, tc.want) {
				t.Errorf("ls does not say what is wrong (%q):\n%s", tc.want, out)
			}
			if _, _, code := tool(t, "ls", "-json"); code != 0 {
				t.Errorf("ls -json: exit %d", code)
			}
			if _, _, code := tool(t, "watch", "-n", "1", name); code != 1 {
				t.Errorf("watch of a damaged region: exit %d, want 1", code)
			}
		})
	}

	// Impossible indices in a valid header: shown, not trusted.
	t.Run("indices", func(t *testing.T) {
		name := newName(t)
		quietRegion(t, name)
		var w [8]byte
		le.PutUint64(w[:], 1000)
		damage(t, name, layout.OffHead, w[:])
		out, _, _ := tool(t, "stat", name)
		if !strings.Contains(out, "fill  IMPOSSIBLE: head 1000, tail 0") {
			t.Errorf("stat with head > tail:\n%s", out)
		}
		out, _, _ = tool(t, "ls")
		if f := lsLine(t, out, name); f[6] != "bad" {
			t.Errorf("ls line with head > tail: %q", f)
		}
	})

	// Another file in /dev/shm: skipped by ls, refused by rm.
	t.Run("foreign file", func(t *testing.T) {
		name := newName(t)
		if err := os.WriteFile("/dev/shm/"+name, []byte("not a region at all, just some bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, code := tool(t, "ls")
		if code != 0 || strings.Contains(out, name) {
			t.Errorf("ls shows a foreign file (exit %d):\n%s", code, out)
		}
		if _, errOut, code := tool(t, "stat", name); code != 1 || !strings.Contains(errOut, "not a shmchan region") {
			t.Errorf("stat of a foreign file: exit %d, %q", code, errOut)
		}
		if _, errOut, code := tool(t, "rm", name); code != 1 || !strings.Contains(errOut, "not a shmchan region") || !exists(name) {
			t.Errorf("rm of a foreign file: exit %d, %q", code, errOut)
		}
		if _, _, code := tool(t, "rm", "-f", name); code != 0 || exists(name) {
			t.Errorf("rm -f of a foreign file: exit %d", code)
		}
	})
}

func TestWatch(t *testing.T) {
	name := newName(t)
	busyRegion(t, name)
	out, errOut, code := tool(t, "watch", "-interval", "50ms", "-n", "2", name)
	if code != 0 {
		t.Fatalf("watch: exit %d, %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("watch -n 2: want a heading and 2 lines, got:\n%s", out)
	}
	for _, l := range lines[1:] {
		// TIME IN/s OUT/s FILL RSLEEP/s SSLEEP/s WAKES/s SENT RECEIVED ROLES
		f := strings.Fields(l)
		if len(f) < 9 || f[1] != "0" || f[2] != "0" || f[3] != "3" || f[7] != "5" || f[8] != "2" ||
			!strings.Contains(l, "recv alive, 1 sender") {
			t.Errorf("watch line %q", l)
		}
	}
	if _, _, code := tool(t, "watch", name, "extra"); code != 2 {
		t.Errorf("watch with two names: exit %d, want 2", code)
	}
}

// watch notices that the name was removed under it, and stops with exit
// status 0 on an interrupt.
func TestWatchUnlinked(t *testing.T) {
	name := newName(t)
	busyRegion(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "watch", "-interval", "20ms", name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	lines, unlinked := 0, false
	for !unlinked && sc.Scan() {
		lines++
		l := sc.Text()
		unlinked = strings.Contains(l, ", unlinked")
		if lines == 2 { // the heading and one line, before the name goes
			if unlinked {
				t.Errorf("watch says unlinked before it was: %q", l)
			}
			if err := shmchan.Unlink(name); err != nil {
				t.Error(err)
			}
		}
	}
	cmd.Process.Signal(os.Interrupt)
	io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if !unlinked {
		t.Errorf("watch never said the region was unlinked (%d lines, %s)", lines, errOut.String())
	}
	if err != nil {
		t.Errorf("watch after an interrupt: %v, %s", err, errOut.String())
	}
}

func TestRm(t *testing.T) {
	name := newName(t)
	helper := startHolder(t, name, "recv", "0")
	_, errOut, code := tool(t, "rm", name)
	want := fmt.Sprintf("shmchan: rm: %s: in use: receiver pid %d alive", name, helper)
	if code != 1 || !strings.Contains(errOut, want) || !exists(name) {
		t.Fatalf("rm of a live region: exit %d, %q, want 1 and %q", code, errOut, want)
	}
	if _, errOut, code := tool(t, "rm", "-f", name); code != 0 || exists(name) {
		t.Fatalf("rm -f: exit %d, %q, exists %v", code, errOut, exists(name))
	}
	if _, errOut, code := tool(t, "rm", name); code != 1 || errOut != fmt.Sprintf("shmchan: rm: %s: no such region\n", name) {
		t.Errorf("rm of an absent region: exit %d, %q", code, errOut)
	}
	if _, _, code := tool(t, "rm", "-f", name); code != 0 {
		t.Errorf("rm -f of an absent region: exit %d", code)
	}

	// Several names: the good ones go, the bad ones are reported, exit 1.
	a, b := newName(t), newName(t)
	quietRegion(t, a)
	quietRegion(t, b)
	out, errOut, code := tool(t, "rm", "-v", a, namePrefix()+"absent", b)
	if code != 1 || exists(a) || exists(b) || out != a+"\n"+b+"\n" || strings.Count(errOut, "\n") != 1 {
		t.Errorf("rm of two regions and an absent one: exit %d, out %q, err %q", code, out, errOut)
	}
	// A region whose roles died with their holder: removed without -f.
	dead := newName(t)
	startHolder(t, dead, "send-exit", "1")
	if _, errOut, code := tool(t, "rm", dead); code != 0 || exists(dead) {
		t.Errorf("rm of a dead region: exit %d, %q", code, errOut)
	}
	if _, _, code := tool(t, "rm"); code != 2 {
		t.Errorf("rm without names: exit %d, want 2", code)
	}
	if _, _, code := tool(t, "rm", "-stale", name); code != 2 {
		t.Errorf("rm -stale NAME: exit %d, want 2", code)
	}
}

func TestRmStale(t *testing.T) {
	dead := newName(t) // roles dead, empty: stale
	startHolder(t, dead, "send-recv-exit", "3")
	full := newName(t) // roles dead, 3 values queued: kept
	startHolder(t, full, "send-exit", "3")
	live := newName(t) // a live receiver: kept
	startHolder(t, live, "recv", "0")
	open := newName(t) // no roles taken, but open in this process: kept
	c, err := shmchan.Create[rec](open)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	damaged := newName(t) // does not validate: kept
	quietRegion(t, damaged)
	damage(t, damaged, layout.OffTypeName, []byte("X"))

	out, errOut, code := tool(t, "stat", dead)
	if code != 0 || !regexp.MustCompile(`receiver\s+\d+\s+dead`).MatchString(out) || !regexp.MustCompile(`sender\s+\d+\s+dead`).MatchString(out) {
		t.Errorf("stat of a region whose holder exited: exit %d, %s\n%s", code, errOut, out)
	}
	out, _, code = tool(t, "rm", "-stale", "-dry-run", "-prefix", namePrefix())
	if code != 0 || out != "would remove "+dead+"\n" || !exists(dead) {
		t.Errorf("rm -stale -dry-run: exit %d, %q", code, out)
	}
	out, errOut, code = tool(t, "rm", "-stale", "-prefix", namePrefix())
	if code != 0 || out != "removed "+dead+"\n" {
		t.Errorf("rm -stale: exit %d, out %q, err %q", code, out, errOut)
	}
	if exists(dead) {
		t.Errorf("rm -stale kept the dead empty region")
	}
	for _, n := range []string{full, live, open, damaged} {
		if !exists(n) {
			t.Errorf("rm -stale removed %s", n)
		}
	}
}

func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"ls", "-h"}, {"stat", "-h"}, {"watch", "-h"}, {"rm", "-h"}, {"rm", "-help"}} {
		out, _, code := tool(t, args...)
		if code != 0 || !strings.Contains(out, "usage: shmchan") {
			t.Errorf("shmchan %v: exit %d, %q", args, code, out)
		}
	}
	for _, args := range [][]string{{}, {"nonsense"}, {"ls", "-bogus"}, {"ls", "extra"}, {"stat"}, {"watch", "-interval", "0", "x"}} {
		_, errOut, code := tool(t, args...)
		if code != 2 || !strings.Contains(errOut, "usage: shmchan") {
			t.Errorf("shmchan %v: exit %d, %q", args, code, errOut)
		}
	}
	if _, errOut, code := tool(t, "stat", "a/b"); code != 1 || !strings.Contains(errOut, "invalid") {
		t.Errorf("stat of an invalid name: exit %d, %q", code, errOut)
	}
}

// A region cut short under the tool's mapping makes the next read fault;
// the fault must come back as an error, not kill the tool. (The binary
// checks the size before reading, so this drives the code in-process to
// reach the fault itself.)
func TestTruncatedUnderMapping(t *testing.T) {
	name := newName(t)
	quietRegion(t, name)
	v, err := region.OpenView(name)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := os.Truncate("/dev/shm/"+name, 0); err != nil {
		t.Fatal(err)
	}
	s, err := v.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if r := infoOf(s); r.Valid || !errors.Is(s.Err, shmchan.ErrCorrupt) || !strings.Contains(r.Error, "memory fault") {
		t.Errorf("read of a truncated mapping: valid %v, err %v", r.Valid, s.Err)
	}
	w := &watcher{v: v}
	if _, err := w.sample(); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("watch sample of a truncated mapping: %v", err)
	}
}

// fanOpts are the options the "wq", "bcast" and "drop" helpers use.
func fanOpts(kind string) []shmchan.Option {
	o := []shmchan.Option{shmchan.WithCapacity(64), shmchan.WithMultiProducer(), shmchan.WithProducers(4), shmchan.WithConsumers(4)}
	switch kind {
	case "wq":
		return append(o, shmchan.WithMultiConsumer())
	case "bcast":
		return append(o, shmchan.WithBroadcast(shmchan.WaitForSlowest))
	}
	return append(o, shmchan.WithBroadcast(shmchan.DropOldest))
}

// fanChannel creates a work queue or broadcast region and sends n values
// into it from the test process (sender entry 1).
func fanChannel(t *testing.T, name, kind string, n int) *shmchan.Chan[rec] {
	t.Helper()
	c, err := shmchan.Create[rec](name, fanOpts(kind)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	send(t, c, n)
	return c
}

func send(t *testing.T, c *shmchan.Chan[rec], n int) {
	t.Helper()
	for i := range n {
		if err := c.TrySend(rec{Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// matchAll reports every regular expression of res that out lacks.
func matchAll(t *testing.T, what, out string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("%s: no match for %s in:\n%s", what, re, out)
		}
	}
}

// A work queue: receivers by their entries, the one that holds a claim,
// the idle one, the dead one still holding its claim (until another
// receiver rescues it).
func TestWorkQueue(t *testing.T) {
	name := newName(t)
	fanChannel(t, name, "wq", 10)
	me := os.Getpid()
	idle := startHolder(t, name, "recv", "3", "wq")         // 0, 1, 2: receiver entry 0
	holding := startHolder(t, name, "recv-hold", "1", "wq") // 3, then holds 4: entry 1
	dead := startHolder(t, name, "hold-exit", "0", "wq")    // holds 5 and dies: entry 2

	out, _, code := tool(t, "ls")
	f := lsLine(t, out, name)
	if code != 0 || f[4] != "WORKQUEUE" || f[6] != "6" {
		t.Errorf("ls of a work queue: exit %d, %q; want WORKQUEUE, fill 6 (10 sent, 4 received)", code, f)
	}
	roles := strings.Join(f[11:], " ")
	want := fmt.Sprintf("send#1 %d alive, recv#0 %d alive idle, recv#1 %d alive claim 4, recv#2 %d dead claim 5", me, idle, holding, dead)
	if roles != want {
		t.Errorf("ls roles %q, want %q", roles, want)
	}

	out, _, code = tool(t, "stat", name)
	if code != 0 {
		t.Errorf("stat: exit %d", code)
	}
	matchAll(t, "stat", out,
		`mode\s+WORKQUEUE\n`, `consumers\s+4 receiver entries`, `flags\s+raw, multi-producer\n`,
		`tail\s+10\n`, `head\s+4\n`, `claim head\s+6 \(2 being received, 4 unclaimed\)`, `fill\s+6 of 64\n`,
		fmt.Sprintf(`1\s+sender\s+%d\s+alive\s.*\s10\s+0\s+no\s+-\n`, me),
		fmt.Sprintf(`5\s+receiver#0\s+%d\s+alive\s.*\s3\s+0\s+(yes|no)\s+idle\n`, idle),
		fmt.Sprintf(`6\s+receiver#1\s+%d\s+alive\s.*\s1\s+0\s+no\s+claim 4\n`, holding),
		fmt.Sprintf(`7\s+receiver#2\s+%d\s+dead\s.*\s0\s+0\s+no\s+claim 5\n`, dead),
	)
	out, _, _ = tool(t, "stat", "-json", name)
	var r struct {
		Header struct {
			Mode      string
			Consumers uint32
			Overflow  *string
		}
		Counters struct {
			ClaimHead *uint64 `json:"claim_head"`
			Lagged    *uint64
		}
		Roles []struct {
			Role            string
			PID             int
			Consumer        *int
			Received, Claim *uint64
			Joined          *bool
			Cursor, Lag     *uint64
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stat -json: %v\n%s", err, out)
	}
	if r.Header.Mode != "WORKQUEUE" || r.Header.Consumers != 4 || r.Header.Overflow != nil ||
		r.Counters.ClaimHead == nil || *r.Counters.ClaimHead != 6 || r.Counters.Lagged != nil || len(r.Roles) != 4 {
		t.Fatalf("stat -json: %s", out)
	}
	for i, w := range []struct {
		pid, consumer   int
		received, claim int64 // -1: absent
	}{{me, -1, -1, -1}, {idle, 0, 3, -1}, {holding, 1, 1, 4}, {dead, 2, 0, 5}} {
		ro := r.Roles[i]
		opt := func(p *uint64) int64 {
			if p == nil {
				return -1
			}
			return int64(*p)
		}
		c := -1
		if ro.Consumer != nil {
			c = *ro.Consumer
		}
		if ro.PID != w.pid || c != w.consumer || opt(ro.Received) != w.received || opt(ro.Claim) != w.claim ||
			ro.Joined != nil || ro.Cursor != nil || ro.Lag != nil {
			t.Errorf("stat -json role %d: %+v, want %+v", i, ro, w)
		}
	}

	out, _, code = tool(t, "watch", "-interval", "50ms", "-n", "1", name)
	wantRoles := "2/4 recv alive, 1 sender [#0 idle, #1 claim 4, #2 dead claim 5]"
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 ||
		!strings.HasSuffix(lines[1], wantRoles) || strings.Fields(lines[1])[3] != "6" || strings.Fields(lines[1])[8] != "4" {
		t.Errorf("watch: exit %d, want fill 6, received 4 and %q in:\n%s", code, wantRoles, out)
	}

	_, errOut, code := tool(t, "rm", name)
	if want := fmt.Sprintf("receiver#0 pid %d alive, receiver#1 pid %d alive", idle, holding); code != 1 || !strings.Contains(errOut, want) || !exists(name) {
		t.Errorf("rm of a live work queue: exit %d, %q, want %q", code, errOut, want)
	}
}

// A broadcast: every receiver has a cursor and a lag; the fill is the
// slowest live one's backlog; a dead receiver still joined is shown so.
func TestBroadcast(t *testing.T) {
	name := newName(t)
	c := fanChannel(t, name, "bcast", 0)
	me := os.Getpid()
	slow := startHolder(t, name, "recv", "0", "bcast") // joins at 0: entry 0
	send(t, c, 5)
	mid := startHolder(t, name, "recv", "0", "bcast") // joins at 5: entry 1
	send(t, c, 3)
	left, err := shmchan.Open[rec](name) // joins at 8: entry 2
	if err != nil {
		t.Fatal(err)
	}
	if _, err := left.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
		t.Fatal(err)
	}
	dead := startHolder(t, name, "recv-exit", "0", "bcast") // joins at 8, dies: entry 3
	left.Close()                                            // leaves: entry 2 is free again

	out, _, code := tool(t, "ls")
	f := lsLine(t, out, name)
	if code != 0 || f[4] != "BROADCAST/wait-for-slowest" || f[6] != "8" {
		t.Errorf("ls of a broadcast: exit %d, %q; want BROADCAST/wait-for-slowest, fill 8", code, f)
	}
	roles := strings.Join(f[11:], " ")
	want := fmt.Sprintf("send#1 %d alive, recv#0 %d alive cursor 0 lag 8, recv#1 %d alive cursor 5 lag 3, recv#3 %d dead cursor 8 lag 0", me, slow, mid, dead)
	if roles != want {
		t.Errorf("ls roles %q, want %q", roles, want)
	}
	out, _, _ = tool(t, "stat", name)
	matchAll(t, "stat", out,
		`mode\s+BROADCAST\n`, `consumers\s+4 receiver entries`, `overflow\s+wait-for-slowest\n`,
		`tail\s+8\n`, `fill\s+8 of 64 \(backlog of the slowest live receiver\)`, `lagged\s+0 `,
		fmt.Sprintf(`5\s+receiver#0\s+%d\s+alive\s.*\s0\s+0\s+(yes|no)\s+cursor 0 lag 8\n`, slow),
		fmt.Sprintf(`6\s+receiver#1\s+%d\s+alive\s.*\s0\s+0\s+(yes|no)\s+cursor 5 lag 3\n`, mid),
		fmt.Sprintf(`8\s+receiver#3\s+%d\s+dead\s.*\s0\s+0\s+(yes|no)\s+cursor 8 lag 0\n`, dead),
	)
	if strings.Contains(out, "receiver#2") {
		t.Errorf("stat lists the receiver that left:\n%s", out)
	}
	out, _, code = tool(t, "watch", "-interval", "50ms", "-n", "1", name)
	wantRoles := "2/4 recv alive, 1 sender [#0 lag 8, #1 lag 3, #3 dead lag 0]"
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 ||
		!strings.HasSuffix(lines[1], wantRoles) || strings.Fields(lines[1])[3] != "8" {
		t.Errorf("watch: exit %d, want fill 8 and %q in:\n%s", code, wantRoles, out)
	}
}

// Drop-oldest: a lag past the capacity, the lagged count once a receiver
// noticed, and a receiver that left.
func TestDropOldest(t *testing.T) {
	name := newName(t)
	c := fanChannel(t, name, "drop", 0)
	r1, err := shmchan.Open[rec](name)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := shmchan.Open[rec](name)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for _, r := range []*shmchan.Chan[rec]{r1, r2} {
		if _, err := r.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
			t.Fatal(err)
		}
	}
	send(t, c, 100) // 36 more than fit
	var lag *shmchan.LagError
	if _, err := r2.TryRecv(); !errors.As(err, &lag) || lag.Missed != 36 {
		t.Fatalf("TryRecv after 100 values: %v, want 36 missed", err)
	}
	for range 4 {
		if _, err := r2.TryRecv(); err != nil {
			t.Fatal(err)
		}
	}
	out, _, code := tool(t, "ls")
	f := lsLine(t, out, name)
	roles := strings.Join(f[11:], " ")
	want := fmt.Sprintf("recv#0 %d alive cursor 0 lag 100, recv#1 %d alive cursor 40 lag 60", os.Getpid(), os.Getpid())
	if code != 0 || f[4] != "BROADCAST/drop-oldest" || f[6] != "64" || !strings.HasSuffix(roles, want) {
		t.Errorf("ls: exit %d, %q; want BROADCAST/drop-oldest, fill 64 and %q", code, f, want)
	}
	out, _, _ = tool(t, "stat", name)
	matchAll(t, "stat", out, `overflow\s+drop-oldest\n`, `lagged\s+36 `, `fill\s+64 of 64 `, `receiver#1\s.*\s4\s+0\s+no\s+cursor 40 lag 60\n`)
	r2.Close() // leaves
	out, _, _ = tool(t, "stat", "-json", name)
	var s struct {
		Fill     uint64
		Counters struct{ Lagged *uint64 }
		Roles    []struct {
			Consumer *int
			Joined   *bool
			Lag      *uint64
		}
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Fill != 64 || s.Counters.Lagged == nil || *s.Counters.Lagged != 36 || len(s.Roles) != 2 ||
		s.Roles[1].Consumer == nil || *s.Roles[1].Consumer != 0 || s.Roles[1].Joined == nil || !*s.Roles[1].Joined ||
		s.Roles[1].Lag == nil || *s.Roles[1].Lag != 100 {
		t.Errorf("stat -json after one receiver left: %s", out)
	}
}

// rm -stale on work queues and broadcasts: every receiver entry counts
// as a role, a work queue's values are kept for the next receiver, a
// broadcast nobody receives is empty.
func TestRmStaleFanOut(t *testing.T) {
	wqDone := newName(t) // everything received, roles dead: stale
	startHolder(t, wqDone, "send-recv-exit", "3", "wq")
	wqQueued := newName(t) // 3 values for the next receiver: kept
	startHolder(t, wqQueued, "send-exit", "3", "wq")
	wqClaimed := newName(t) // a dead receiver's claim, to be rescued: kept
	startHolder(t, wqClaimed, "send-recv-exit", "2", "wq")
	startHolder(t, wqClaimed, "send-hold-exit", "1", "wq")
	wqLive := newName(t) // a live receiver: kept
	startHolder(t, wqLive, "send-recv", "1", "wq")
	bcDead := newName(t) // a dead receiver 3 behind, no live one: stale
	startHolder(t, bcDead, "join-send-exit", "3", "bcast")
	bcLive := newName(t) // a live receiver: kept
	startHolder(t, bcLive, "join-send", "3", "drop")

	out, _, code := tool(t, "stat", bcDead)
	if code != 0 || !regexp.MustCompile(`receiver#0\s+\d+\s+dead\s.*cursor 0 lag 3\n`).MatchString(out) || !regexp.MustCompile(`fill\s+0 of 64 `).MatchString(out) {
		t.Errorf("stat of a dead broadcast: exit %d\n%s", code, out)
	}
	out, errOut, code := tool(t, "rm", "-stale", "-prefix", namePrefix())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !slicesContain(lines, "removed "+wqDone) || !slicesContain(lines, "removed "+bcDead) {
		t.Errorf("rm -stale: exit %d, out %q, err %q; want %s and %s removed", code, out, errOut, wqDone, bcDead)
	}
	for _, n := range []string{wqQueued, wqClaimed, wqLive, bcLive} {
		if !exists(n) {
			t.Errorf("rm -stale removed %s", n)
		}
	}
}

func slicesContain(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
