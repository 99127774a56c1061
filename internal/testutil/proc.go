package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a running child process of a test that reports on its standard
// output, one line per event.
type Proc struct {
	Cmd *exec.Cmd
	// Lines carries the process's output a line at a time; it is closed
	// when the output ends.
	Lines chan string
	// In is the process's standard input, with ProcOptions.Stdin (else nil).
	In io.WriteCloser

	t       testing.TB
	opts    ProcOptions
	done    chan error // the exit error, put back by whoever takes it
	skipped []string   // the last lines Await passed over, for its messages
}

// ProcOptions are Start's options.
type ProcOptions struct {
	What       string // what messages call the process ("helper" if empty)
	Buffer     int    // lines Lines holds before the process blocks on its output
	FailPrefix string // a line with this prefix fails Expect and Await (none if empty)
	Stdin      bool   // give the process a pipe as its standard input (Proc.In)
}

// Start starts cmd (its stderr, if not set, is this process's) and reads
// its output into Lines. The process is SIGKILLed and reaped when the test
// ends.
func Start(t testing.TB, cmd *exec.Cmd, opts ProcOptions) *Proc {
	t.Helper()
	if opts.What == "" {
		opts.What = "helper"
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var in io.WriteCloser
	if opts.Stdin {
		if in, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Lines: make(chan string, opts.Buffer), In: in, t: t, opts: opts, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.Lines <- sc.Text()
		}
		close(p.Lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(p.Kill)
	return p
}

// Await waits for a line that match accepts and returns it; ok is false
// when the output ended first. A minute without such a line fails the
// test, and so does a line with ProcOptions.FailPrefix.
func (p *Proc) Await(what string, match func(line string) bool) (line string, ok bool) {
	p.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-p.Lines:
			if !ok {
				return "", false
			}
			if p.opts.FailPrefix != "" && strings.HasPrefix(l, p.opts.FailPrefix) {
				p.t.Fatalf("%s: %s", p.opts.What, l)
			}
			if match(l) {
				return l, true
			}
			p.skipped = append(p.skipped[max(0, len(p.skipped)-4):], l)
		case <-timeout:
			p.t.Fatalf("%s did not print %s within a minute (its last lines: %q)", p.opts.What, what, p.skipped)
		}
	}
}

// Expect waits for the process to print line; its exit first fails the
// test.
func (p *Proc) Expect(line string) {
	p.t.Helper()
	if _, ok := p.Await(fmt.Sprintf("%q", line), func(l string) bool { return l == line }); !ok {
		p.t.Fatalf("%s exited before printing %q: %v (its last lines: %q)", p.opts.What, line, p.Wait(), p.skipped)
	}
}

// ExpectPrefix waits for a line that starts with prefix and returns it;
// the process's exit first fails the test.
func (p *Proc) ExpectPrefix(prefix string) string {
	p.t.Helper()
	l, ok := p.Await(fmt.Sprintf("%q", prefix), func(l string) bool { return strings.HasPrefix(l, prefix) })
	if !ok {
		p.t.Fatalf("%s exited before printing %q: %v (its last lines: %q)", p.opts.What, prefix, p.Wait(), p.skipped)
	}
	return l
}

// Wait waits (up to two minutes, then kills it) for the process to exit
// and returns its exit error.
func (p *Proc) Wait() error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(2 * time.Minute):
		p.Kill()
		return fmt.Errorf("%s did not exit within two minutes", p.opts.What)
	}
}

// Finish waits for the process to exit, failing the test unless it exits
// 0, and returns the lines not read yet.
func (p *Proc) Finish() []string {
	p.t.Helper()
	var rest []string
	for l := range p.Lines {
		rest = append(rest, l)
	}
	if err := p.Wait(); err != nil {
		p.t.Fatalf("%s: %v (output %q)", p.opts.What, err, rest)
	}
	return rest
}

// Kill SIGKILLs the process and reaps it. (It does not look at
// Cmd.ProcessState first: the reader goroutine's Cmd.Wait writes it, a
// data race when the process exited by itself. Signalling a process that
// has been waited for is a no-op that returns os.ErrProcessDone.)
func (p *Proc) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
	}
}

// Signal sends sig to the process, failing the test if that fails.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Stop SIGSTOPs the process and waits until it is stopped: kill(2)
// returns before the signal takes effect, and until then it runs on.
func (p *Proc) Stop() {
	p.t.Helper()
	p.Signal(syscall.SIGSTOP)
	p.WaitStopped(10 * time.Second)
}

// WaitStopped waits until the process is stopped (SIGSTOP), failing the
// test if it is not within limit.
func (p *Proc) WaitStopped(limit time.Duration) {
	p.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Microsecond) {
		if s := ProcState(p.Cmd.Process.Pid); s == 'T' || s == 't' {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not stopped within %v (state %q)", p.opts.What, limit, ProcState(p.Cmd.Process.Pid))
		}
	}
}

// ProcState returns the state letter of process pid (R, S, T, ...), or 0
// if it cannot be read.
func ProcState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(b), ')'); err == nil && i >= 0 && i+2 < len(b) {
		return b[i+2]
	}
	return 0
}

// NoRaceExitDelay is the GORACE setting, for a child's environment, that
// spares a race-enabled child the second it otherwise sleeps at exit.
func NoRaceExitDelay() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// HelperCommand returns the command that runs this test binary again as a
// helper in mode, with args (printed with fmt.Sprint, space separated):
// Main then calls Config.Helper. The helper dies with the thread that
// started it (SIGKILL as its parent-death signal), so a test process that
// dies leaves no helper running.
func HelperCommand(ctx context.Context, mode string, args ...any) (*exec.Cmd, error) {
	if cfg.HelperEnv == "" || cfg.Helper == nil {
		return nil, errors.New("testutil: this test binary's Config has no helper")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	strs := make([]string, len(args))
	for i, a := range args {
		strs[i] = fmt.Sprint(a)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), cfg.HelperEnv+"="+mode, cfg.ArgsEnv+"="+strings.Join(strs, " "), NoRaceExitDelay())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// Helper starts this test binary again as a helper in mode, with args (see
// HelperCommand), as Start does, holding up to buffer lines of its output.
func Helper(t testing.TB, buffer int, mode string, args ...any) *Proc {
	t.Helper()
	cmd, err := HelperCommand(context.Background(), mode, args...)
	if err != nil {
		t.Fatal(err)
	}
	return Start(t, cmd, ProcOptions{Buffer: buffer})
}

// Args are a helper's arguments; one past the end reads as "" (or 0).
type Args []string

// Str returns argument i.
func (a Args) Str(i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

// Num returns argument i as a number (0 if it is not one).
func (a Args) Num(i int) uint64 {
	n, _ := strconv.ParseUint(a.Str(i), 10, 64)
	return n
}

// HelperFailed reports a helper's failure on its stderr and returns the
// exit code that says so, 1.
func HelperFailed(mode string, err error) int {
	fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
	return 1
}

// Say prints one line on the standard output, unbuffered (os.Stdout is):
// a helper's report to its test, of which a SIGKILL loses nothing printed.
func Say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// Hang blocks until the process is killed. (select {} would not do: with
// nothing else to run, the runtime ends the process as deadlocked.)
func Hang() {
	for {
		time.Sleep(time.Hour)
	}
}
