package bench

// Peers: the second process of a cross-process row. The parent starts this
// same executable again as "<executable> bench" with the peer's job (a job,
// as JSON) in peerEnv; the command sees IsPeer and calls RunPeer before it
// parses any flag. The peer opens what the parent made (by name, or as
// inherited descriptors 3, 4, ...), says "ready" on its stdout, waits for
// "go" on its stdin, does its job, and prints its result (a peerResult, as
// JSON) on its stdout.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// peerEnv marks a process started by the bench as its peer; the value is
// the peer's job (a job, as JSON).
const peerEnv = "SHMCHAN_BENCH_PEER"

// IsPeer reports whether this process was started by a bench as its peer.
// Then the command must call RunPeer, and exit with what it returns, before
// it does anything else.
func IsPeer() bool {
	_, ok := os.LookupEnv(peerEnv)
	return ok
}

// RunPeer does the job a bench gave this process, its peer, and returns
// the exit code.
func RunPeer() int {
	return runPeer(os.Getenv(peerEnv))
}

// job is a peer's job.
type job struct {
	Role   string        `json:"role"`
	Size   int           `json:"size"`
	Names  []string      `json:"names,omitempty"`
	Spin   time.Duration `json:"spin,omitempty"` // WithSpin for shmchan handles; 0: default
	Warm   uint64        `json:"warm,omitempty"`
	Budget time.Duration `json:"budget,omitempty"`
	Batch  int           `json:"batch,omitempty"`
	Cap    int           `json:"cap,omitempty"`
	Duplex bool          `json:"duplex,omitempty"` // stream echo: descriptor 3 both ways
	ID     int           `json:"id,omitempty"`     // many senders: this sender's number, tagged into its values

	// Corrupt, if not 0, makes a sender damage value number Corrupt on
	// purpose (the tests check that the receiver notices).
	Corrupt uint64 `json:"corrupt,omitempty"`
}

// corrupt damages value seq if the spec asks for it.
func corrupt(w []uint64, seq uint64, s *job) {
	if s.Corrupt != 0 && seq == s.Corrupt {
		w[len(w)-1] ^= 1 << 17
	}
}

// peerResult is what a peer reports when it is done.
type peerResult struct {
	Count  uint64 `json:"count"`            // values sent or received, or round trips echoed
	Err    string `json:"err,omitempty"`    // what went wrong
	Verify bool   `json:"verify,omitempty"` // Err is a verification failure
	// A receiving peer of the fan-out rows: when it had received
	// everything (CLOCK_MONOTONIC, comparable across processes), and the
	// sum of mix(seq) over the values it received (work queue: the union
	// of the receivers' values must be every value sent, once).
	EndNS int64  `json:"end_ns,omitempty"`
	Sum   uint64 `json:"sum,omitempty"`
}

// peer is a running peer process, seen from the parent.
type peer struct {
	e      *env
	cmd    *exec.Cmd
	ctl    *os.File // the peer's stdin: "go", then closed
	out    *os.File // the peer's stdout: "ready", then its result
	rd     *bufio.Reader
	exited chan struct{}
	werr   error // cmd.Wait's, valid once exited is closed
	budget time.Duration
	once   sync.Once // release
}

// startPeer starts a peer for spec, handing it files as descriptors 3, 4, ...
// It closes files (the peer's ends) in the parent, whatever happens.
func (e *env) startPeer(spec job, files ...*os.File) (*peer, error) {
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the bench's own executable: %w", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := exec.Command(exe, "bench")
	cmd.Env = append(os.Environ(), peerEnv+"="+string(js))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("starting the peer: %w", err)
	}
	e.clean.addProc(cmd.Process)
	p := &peer{e: e, cmd: cmd, ctl: inW, out: outR, rd: bufio.NewReader(outR), exited: make(chan struct{}), budget: spec.Budget}
	go func() {
		p.werr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// readLine reads the peer's next line within d.
func (p *peer) readLine(d time.Duration) (string, error) {
	_ = p.out.SetReadDeadline(time.Now().Add(d))
	line, err := p.rd.ReadString('\n')
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", fmt.Errorf("peer said nothing for %v", d)
		}
		// EOF: the peer is gone; say how it ended.
		select {
		case <-p.exited:
			return "", fmt.Errorf("peer exited early: %v (its stderr is above)", p.werr)
		case <-time.After(5 * time.Second):
			return "", fmt.Errorf("peer closed its output: %w", err)
		}
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// ready waits for the peer to have opened everything.
func (p *peer) ready() error {
	line, err := p.readLine(30 * time.Second)
	if err == nil && line != "ready" {
		err = fmt.Errorf("peer said %q, want ready", line)
	}
	if err != nil {
		p.kill()
		p.release()
	}
	return err
}

// start tells the peer to go, and returns a context that ends if the peer
// fails (exits unsuccessfully) or the parent's ctx ends, in which case the
// peer is killed, so that a parent blocked in a read sees end of file.
// Call stop when the measurement is over.
func (p *peer) start(ctx context.Context) (mctx context.Context, stop func(), err error) {
	if _, err := io.WriteString(p.ctl, "go\n"); err != nil {
		p.kill()
		p.release()
		return nil, nil, fmt.Errorf("telling the peer to go: %w", err)
	}
	mctx, cancel := context.WithCancel(ctx)
	quit := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case <-p.exited:
			if p.werr != nil {
				cancel()
			}
		case <-mctx.Done():
			p.kill()
		case <-quit:
		}
	}()
	return mctx, func() { once.Do(func() { close(quit); cancel() }) }, nil
}

// launch starts a peer for spec with files (startPeer), waits until it is
// ready, runs opened (if not nil: what the parent does once the peer has
// everything open, such as unlinking the names) and tells it to go
// (start).
func (e *env) launch(ctx context.Context, spec job, opened func(), files ...*os.File) (p *peer, mctx context.Context, stop func(), err error) {
	if p, err = e.startPeer(spec, files...); err != nil {
		return nil, nil, nil, err
	}
	if err := p.ready(); err != nil {
		return nil, nil, nil, err
	}
	if opened != nil {
		opened()
	}
	if mctx, stop, err = p.start(ctx); err != nil {
		return nil, nil, nil, err
	}
	return p, mctx, stop, nil
}

// finish collects the peer's result and waits for it to exit. bodyErr is
// the parent's own error, if any: a peer's error is reported in its place
// (it is usually the cause), and a verification failure on either side
// always wins.
func (p *peer) finish(bodyErr error) (peerResult, error) {
	var res peerResult
	defer p.release()
	wait := p.budget + 20*time.Second
	if bodyErr != nil {
		var ve *verifyError
		if errors.As(bodyErr, &ve) {
			p.kill()
			return res, bodyErr
		}
		// The parent failed: if the peer failed first, it says why at
		// once; if not, it may be stuck waiting for the parent.
		wait = 2 * time.Second
	}
	line, err := p.readLine(wait)
	if err == nil {
		if jerr := json.Unmarshal([]byte(line), &res); jerr != nil {
			err = fmt.Errorf("peer's result %q: %v", line, jerr)
		}
	}
	if err != nil {
		p.kill()
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
		<-p.exited
	}
	switch {
	case err != nil && bodyErr != nil:
		return res, bodyErr
	case err != nil:
		return res, err
	case res.Err != "" && res.Verify:
		return res, &verifyError{msg: "in the peer: " + strings.TrimPrefix(res.Err, "verification failed: ")}
	case res.Err != "":
		return res, fmt.Errorf("peer: %s", res.Err)
	case bodyErr != nil:
		return res, bodyErr
	case p.werr != nil:
		return res, fmt.Errorf("peer: %v", p.werr)
	}
	return res, nil
}

func (p *peer) kill() {
	_ = p.cmd.Process.Kill()
}

// release waits for the peer to exit (killing it after 10s) and closes
// the parent's ends of its pipes.
func (p *peer) release() {
	p.once.Do(func() {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.kill()
			<-p.exited
		}
		p.ctl.Close()
		p.out.Close()
		p.e.clean.dropProc(p.cmd.Process)
	})
}

// finishThroughput collects the peer's result and makes the sample of
// a row that counts no system calls.
func finishThroughput(p *peer, rerr error, seq uint64, m *meter) (sample, error) {
	res, err := p.finish(rerr)
	if err != nil {
		return sample{}, err
	}
	if res.Count != seq {
		return sample{}, verifyf("the peer sent %d values, %d arrived", res.Count, seq)
	}
	n, rate, err := m.result(seq)
	if err != nil {
		return sample{}, err
	}
	return uncounted(rate, n), nil
}

// finishRTT collects an echo peer's result.
func finishRTT(p *peer, rerr error, s sample, rounds uint64) (sample, error) {
	res, err := p.finish(rerr)
	if err != nil {
		return sample{}, err
	}
	if res.Count != rounds {
		return sample{}, verifyf("the peer echoed %d values, %d came back", res.Count, rounds)
	}
	return s, nil
}

// runPeer runs in the peer process.
func runPeer(specJSON string) int {
	// Ctrl-C reaches the whole process group: the parent handles it and
	// kills us.
	signal.Ignore(os.Interrupt, syscall.SIGHUP)
	var spec job
	res := peerResult{}
	err := json.Unmarshal([]byte(specJSON), &spec)
	var role roleFunc
	if err == nil {
		role = peerRoles()[spec.Role]
		if role == nil {
			err = fmt.Errorf("unknown peer role %q", spec.Role)
		}
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*spec.Budget+60*time.Second)
		defer cancel()
		in := bufio.NewReader(os.Stdin)
		handshake := func() error {
			if _, err := io.WriteString(os.Stdout, "ready\n"); err != nil {
				return err
			}
			line, err := in.ReadString('\n')
			if err != nil || line != "go\n" {
				return fmt.Errorf("waiting for go: got %q, %v", line, err)
			}
			// The parent closes our stdin when it is done with us, or
			// when it dies: then there is nobody to talk to.
			go func() {
				_, _ = io.Copy(io.Discard, in)
				os.Exit(3)
			}()
			return nil
		}
		res, err = role(ctx, spec, handshake)
	}
	if err != nil {
		res.Err = err.Error()
		var ve *verifyError
		res.Verify = errors.As(err, &ve)
	}
	js, _ := json.Marshal(res)
	_, _ = os.Stdout.Write(append(js, '\n'))
	if err != nil {
		return 1
	}
	return 0
}

// roleFunc is what a peer does: it opens what the parent made, calls
// handshake, then works until it is done, and returns its result.
type roleFunc func(ctx context.Context, s job, handshake func() error) (peerResult, error)

// counted makes a roleFunc of a role that returns how many values it
// sent (or round trips it echoed).
func counted(f func(context.Context, job, func() error) (uint64, error)) roleFunc {
	return func(ctx context.Context, s job, hs func() error) (peerResult, error) {
		n, err := f(ctx, s, hs)
		return peerResult{Count: n}, err
	}
}

// peerRoles maps a role name to what the peer does.
func peerRoles() map[string]roleFunc {
	return map[string]roleFunc{
		"shm-send": counted(func(ctx context.Context, s job, hs func() error) (uint64, error) {
			return opsFor(s.Size).shmSend(ctx, s, hs)
		}),
		"shm-send-batch": counted(func(ctx context.Context, s job, hs func() error) (uint64, error) {
			return opsFor(s.Size).shmSendBatch(ctx, s, hs)
		}),
		"shm-send-inplace": counted(func(ctx context.Context, s job, hs func() error) (uint64, error) {
			return opsFor(s.Size).shmSendInPlace(ctx, s, hs)
		}),
		"shm-echo":    counted(shmEcho),
		"mq-send":     counted(mqSend),
		"mq-echo":     counted(mqEcho),
		"stream-send": counted(streamSend),
		"stream-echo": counted(streamEcho),
		"ring-send":   counted(ringSend),
		"line-echo":   counted(lineEcho),
		"futex-echo":  counted(futexEcho),
		"wq-recv":     fanRecv,
		"bc-recv":     fanRecv,
		"mq-recv":     fanRecv,
		"pipe-recv":   fanRecv,
		"mpsc-send":   counted(manySend),
		"mqw-send":    counted(manySend),
	}
}
