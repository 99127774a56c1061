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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/internal/region"
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

var (
	binPath   string // the built tool
	nameCount atomic.Int64
	usedMu    sync.Mutex
	usedNames []string
)

func namePrefix() string { return fmt.Sprintf("shmchan-test-%d-", os.Getpid()) }

// newName returns a fresh region name and removes the region (and any
// doorbells) when the test ends.
func newName(t *testing.T) string {
	name := fmt.Sprintf("%s%d", namePrefix(), nameCount.Add(1))
	usedMu.Lock()
	usedNames = append(usedNames, name)
	usedMu.Unlock()
	t.Cleanup(func() { shmchan.Unlink(name) })
	return name
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(toolsHelperEnv); mode != "" {
		os.Exit(toolsHelper(mode, strings.Fields(os.Getenv(toolsHelperArgs))))
	}
	dir, err := os.MkdirTemp("", "shmchan-tool-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "shmchan")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the tool:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "left behind: %v\n", left)
		code = 1
	}
	os.Exit(code)
}

// leftovers lists regions with this process's prefix still in /dev/shm,
// and doorbell queues of the names used that still exist.
func leftovers() []string {
	var left []string
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), namePrefix()) {
			left = append(left, "/dev/shm/"+e.Name())
		}
	}
	for _, n := range usedNames {
		for _, b := range []string{n + ".rx", n + ".tx"} {
			if q, err := mq.Open(b, os.O_RDONLY, 0, nil); err == nil {
				q.Close()
				left = append(left, "mq /"+b)
			}
		}
	}
	return left
}

// toolsHelper is a helper process's main.
//
//	hold NAME ROLES N [mq]: open or create NAME (capacity 64); with "send"
//	  in ROLES send N values, with "recv" in ROLES receive N values (or, for
//	  N = 0, take the receiver role with a TryRecv); print "ready"; then with
//	  "exit" in ROLES exit at once, without closing (the roles' holder is
//	  dead), else keep everything until standard input closes.
func toolsHelper(mode string, args []string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		return 1
	}
	if mode != "hold" || len(args) < 3 {
		return fail(fmt.Errorf("bad helper call %q %q", mode, args))
	}
	name, roles := args[0], args[1]
	n, _ := strconv.Atoi(args[2])
	opts := []shmchan.Option{shmchan.WithCapacity(64)}
	if len(args) > 3 && args[3] == "mq" {
		opts = append(opts, shmchan.WithWait(shmchan.WaitMQ))
	}
	c, err := shmchan.OpenOrCreate[rec](name, opts...)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
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
		for range n {
			if _, err := c.Recv(ctx); err != nil {
				return fail(err)
			}
		}
	}
	fmt.Println("ready")
	if strings.Contains(roles, "exit") {
		return 0 // no Close: the kernel drops the role locks, the pids stay
	}
	io.Copy(io.Discard, os.Stdin)
	c.Close()
	return 0
}

// startHolder runs a "hold" helper and waits until it is ready. It returns
// the helper's pid; the helper is stopped when the test ends. For roles
// with "exit" it waits for the helper to have exited.
func startHolder(t *testing.T, args ...string) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), toolsHelperEnv+"=hold", toolsHelperArgs+"="+strings.Join(args, " "))
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
	line, err := bufio.NewReader(stdout).ReadString('\n')
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
