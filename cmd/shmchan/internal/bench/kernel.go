package bench

// The kernel transports: POSIX message queues (through the mq package),
// pipes and Unix stream sockets (raw blocking read and write system calls
// on the descriptors, no Go poller in the way: the fastest way Go can use
// them).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan/mq"
)

// procInt reads an integer from a /proc file, or returns def.
func procInt(path string, def int) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return def
	}
	return n
}

const (
	msgSizeMaxPath = "/proc/sys/fs/mqueue/msgsize_max"
	msgMaxPath     = "/proc/sys/fs/mqueue/msg_max"
)

// mqNA says why POSIX mq cannot carry a size.
func mqNA(size int) string {
	if m := procInt(msgSizeMaxPath, 8192); size > m {
		return fmt.Sprintf("POSIX mq: larger than msgsize_max (%d B, %s)", m, msgSizeMaxPath)
	}
	return ""
}

// mqCapacity is the deepest queue an unprivileged process may create.
func mqCapacity() int { return max(1, procInt(msgMaxPath, 10)) }

func mqCreate(e *env, size int) (string, *mq.Queue, error) {
	name := e.newName("mq")
	e.clean.addMQ(name)
	q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &mq.Attr{MaxMsg: int64(mqCapacity()), MsgSize: int64(size)})
	if err != nil {
		e.clean.unlinkMQ(name)
		return "", nil, err
	}
	return name, q, nil
}

// mqThroughput: the peer mq_sends one value per call, the parent
// mq_receives and checks; a zero-length message ends the run.
func mqThroughput(ctx context.Context, e *env, size int) (sample, error) {
	warm := warmCount(size)
	name, q, err := mqCreate(e, size)
	if err != nil {
		return sample{}, err
	}
	defer e.clean.unlinkMQ(name)
	defer q.Close()
	p, mctx, stop, err := e.launch(ctx, job{Role: "mq-send", Size: size, Names: []string{name}, Warm: warm, Budget: e.cfg.Budget, Corrupt: e.cfg.corruptAt}, func() { e.clean.unlinkMQ(name) })
	if err != nil {
		return sample{}, err
	}
	buf := make([]uint64, size/8)
	b := asBytes(buf)
	var seq uint64
	var rerr error
	meter := newMeter(warm, e.cfg.Budget, nil)
	for {
		n, _, err := q.Receive(mctx, b)
		if err != nil {
			rerr = err
			break
		}
		if n == 0 {
			break
		}
		if n != size {
			rerr = verifyf("value %d: message of %d bytes, want %d", seq, n, size)
			break
		}
		if rerr = check(buf, seq, seq%fullEvery == 0); rerr != nil {
			break
		}
		seq++
		meter.got(seq)
	}
	meter.stop()
	stop()
	return finishThroughput(p, rerr, seq, meter)
}

func mqSend(ctx context.Context, s job, hs func() error) (uint64, error) {
	q, err := mq.Open(s.Names[0], os.O_WRONLY, 0, nil)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	buf := make([]uint64, s.Size/8)
	fill(buf, 0)
	b := asBytes(buf)
	n, err := sendLoop(s, func(seq uint64) (int, error) {
		stamp(buf, seq)
		corrupt(buf, seq, &s)
		if err := q.Send(ctx, b, 0); err != nil {
			return 0, err
		}
		return 1, nil
	})
	if err != nil {
		return n, err
	}
	return n, q.Send(ctx, nil, 0) // the end
}

// mqLatency: round trips over two queues.
func mqLatency(ctx context.Context, e *env, _ int) (sample, error) {
	var names []string
	var qs []*mq.Queue
	for range 2 {
		name, q, err := mqCreate(e, 16)
		if err != nil {
			return sample{}, err
		}
		defer e.clean.unlinkMQ(name)
		defer q.Close()
		names, qs = append(names, name), append(qs, q)
	}
	p, mctx, stop, err := e.launch(ctx, job{Role: "mq-echo", Size: 16, Names: names, Budget: e.cfg.LatencyBudget}, func() {
		for _, n := range names {
			e.clean.unlinkMQ(n)
		}
	})
	if err != nil {
		return sample{}, err
	}
	defer stop()
	var v, r [2]uint64
	var rounds uint64
	s, rerr := measureRTT(mctx, e, func(seq uint64) error {
		stamp(v[:], seq)
		if err := qs[0].Send(mctx, asBytes(v[:]), 0); err != nil {
			return err
		}
		n, _, err := qs[1].Receive(mctx, asBytes(r[:]))
		if err != nil {
			return err
		}
		if n != 16 {
			return verifyf("echo %d: %d bytes, want 16", seq, n)
		}
		if err := check(r[:], seq, true); err != nil {
			return err
		}
		rounds++
		return nil
	})
	if rerr == nil {
		rerr = qs[0].Send(mctx, nil, 0)
	}
	return finishRTT(p, rerr, s, rounds)
}

func mqEcho(ctx context.Context, s job, hs func() error) (uint64, error) {
	ping, err := mq.Open(s.Names[0], os.O_RDONLY, 0, nil)
	if err != nil {
		return 0, err
	}
	defer ping.Close()
	pong, err := mq.Open(s.Names[1], os.O_WRONLY, 0, nil)
	if err != nil {
		return 0, err
	}
	defer pong.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	var v [2]uint64
	b := asBytes(v[:])
	for seq := uint64(0); ; seq++ {
		n, _, err := ping.Receive(ctx, b)
		if err != nil {
			return seq, err
		}
		if n == 0 {
			return seq, nil
		}
		if n != 16 {
			return seq, verifyf("ping %d: %d bytes, want 16", seq, n)
		}
		if err := check(v[:], seq, true); err != nil {
			return seq, err
		}
		if err := pong.Send(ctx, b, 0); err != nil {
			return seq, err
		}
	}
}

// pipeSize is what pipes are grown to (F_SETPIPE_SZ, best effort), so
// that a pipe holds about what a shmchan region of 1 MiB values does.
const pipeSize = 1 << 20

// streamPair returns the parent's descriptor and the peer's end of a
// new pipe (parent reads, peer writes; reverse: the other way round) or
// Unix stream socket pair.
func streamPair(kind string, reverse bool) (int, *os.File, error) {
	switch kind {
	case "pipe":
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return -1, nil, fmt.Errorf("pipe2: %w", err)
		}
		_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, pipeSize)
		mine, theirs := p[0], p[1]
		if reverse {
			mine, theirs = p[1], p[0]
		}
		return mine, os.NewFile(uintptr(theirs), "pipe"), nil
	case "unix":
		sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, nil, fmt.Errorf("socketpair: %w", err)
		}
		return sv[0], os.NewFile(uintptr(sv[1]), "socket"), nil
	}
	return -1, nil, fmt.Errorf("unknown stream %q", kind)
}

// readFull reads len(b) bytes from fd; a clean end of file before the
// first byte is (0, io.EOF).
func readFull(fd int, b []byte) (int, error) {
	got := 0
	for got < len(b) {
		n, err := unix.Read(fd, b[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return got, err
		}
		if n == 0 {
			if got == 0 {
				return 0, io.EOF
			}
			return got, io.ErrUnexpectedEOF
		}
		got += n
	}
	return got, nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// streamThroughput returns the run function of a pipe or socket row:
// the peer writes values (batch of them per write when batched), the
// parent reads (one value per read, or whatever one read returns when
// batched) and checks them; end of file ends the run.
func streamThroughput(kind string, batched bool) func(context.Context, *env, int) (sample, error) {
	return func(ctx context.Context, e *env, size int) (sample, error) {
		warm := warmCount(size)
		batch := 1
		if batched {
			_, batch = geometry(size)
		}
		fd, theirs, err := streamPair(kind, false)
		if err != nil {
			return sample{}, err
		}
		defer unix.Close(fd)
		// A read that never returns ends when start's watcher kills the
		// peer (at the deadline of ctx, or if it fails): end of file.
		p, _, stop, err := e.launch(ctx, job{Role: "stream-send", Size: size, Warm: warm, Budget: e.cfg.Budget, Batch: batch, Corrupt: e.cfg.corruptAt}, nil, theirs)
		if err != nil {
			return sample{}, err
		}
		words := size / 8
		buf := make([]uint64, batch*words)
		b := asBytes(buf)
		var seq uint64
		var rerr error
		meter := newMeter(warm, e.cfg.Budget, nil)
		take := func(w []uint64) error { // checks the next value and counts it
			if err := check(w, seq, seq%fullEvery == 0); err != nil {
				return err
			}
			seq++
			meter.got(seq)
			return nil
		}
		if !batched {
			for {
				n, err := readFull(fd, b)
				if err == io.EOF {
					break
				}
				if err == io.ErrUnexpectedEOF {
					rerr = verifyf("value %d: stream ended after %d of its %d bytes", seq, n, size)
					break
				}
				if err != nil {
					rerr = err
					break
				}
				if rerr = take(buf); rerr != nil {
					break
				}
			}
		} else {
			have := 0 // bytes in b
			for {
				n, err := unix.Read(fd, b[have:])
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					rerr = err
					break
				}
				if n == 0 {
					if have != 0 {
						rerr = verifyf("value %d: stream ended after %d of its %d bytes", seq, have, size)
					}
					break
				}
				have += n
				whole := have / size
				for i := 0; i < whole && rerr == nil; i++ {
					rerr = take(buf[i*words : (i+1)*words])
				}
				if rerr != nil {
					break
				}
				have = copy(b, b[whole*size:have])
			}
		}
		meter.stop()
		stop()
		return finishThroughput(p, rerr, seq, meter)
	}
}

// streamSend is the peer of the pipe and socket rows: descriptor 3.
func streamSend(ctx context.Context, s job, hs func() error) (uint64, error) {
	const fd = 3
	if err := hs(); err != nil {
		return 0, err
	}
	words := s.Size / 8
	batch := max(1, s.Batch)
	buf := make([]uint64, batch*words)
	for i := range batch {
		fill(buf[i*words:(i+1)*words], 0)
	}
	b := asBytes(buf)
	n, err := sendLoop(s, func(seq uint64) (int, error) {
		for i := range batch {
			w := buf[i*words : (i+1)*words]
			stamp(w, seq+uint64(i))
			corrupt(w, seq+uint64(i), &s)
		}
		if err := writeAll(fd, b); err != nil {
			return 0, err
		}
		return batch, nil
	})
	if err != nil {
		return n, err
	}
	return n, unix.Close(fd) // end of file for the parent
}

// streamLatency returns the run function of a pipe (two pipes) or
// socket (one pair, both ways) round-trip row.
func streamLatency(kind string) func(context.Context, *env, int) (sample, error) {
	return func(ctx context.Context, e *env, _ int) (sample, error) {
		wfd, rfd := -1, -1
		defer func() {
			if wfd >= 0 {
				unix.Close(wfd)
			}
			if rfd >= 0 && rfd != wfd {
				unix.Close(rfd)
			}
		}()
		var files []*os.File
		if kind == "pipe" {
			w, theirsR, err := streamPair("pipe", true) // parent writes pings
			if err != nil {
				return sample{}, err
			}
			wfd = w
			r, theirsW, err := streamPair("pipe", false) // parent reads pongs
			if err != nil {
				theirsR.Close()
				return sample{}, err
			}
			rfd = r
			files = []*os.File{theirsR, theirsW}
		} else {
			fd, theirs, err := streamPair(kind, false)
			if err != nil {
				return sample{}, err
			}
			wfd, rfd, files = fd, fd, []*os.File{theirs}
		}
		p, mctx, stop, err := e.launch(ctx, job{Role: "stream-echo", Size: 16, Budget: e.cfg.LatencyBudget, Duplex: kind != "pipe"}, nil, files...)
		if err != nil {
			return sample{}, err
		}
		defer stop()
		var v, r [2]uint64
		var rounds uint64
		s, rerr := measureRTT(mctx, e, func(seq uint64) error {
			stamp(v[:], seq)
			if err := writeAll(wfd, asBytes(v[:])); err != nil {
				return err
			}
			if _, err := readFull(rfd, asBytes(r[:])); err != nil {
				return fmt.Errorf("reading echo %d: %w", seq, err)
			}
			if err := check(r[:], seq, true); err != nil {
				return err
			}
			rounds++
			return nil
		})
		// End of file for the peer.
		if kind == "pipe" {
			unix.Close(wfd)
			wfd = -1
		} else {
			_ = unix.Shutdown(wfd, unix.SHUT_WR)
		}
		return finishRTT(p, rerr, s, rounds)
	}
}

// streamEcho is the peer of the pipe and socket round trips: it reads
// from descriptor 3 and writes back to 4 (or to 3 for a socket).
func streamEcho(ctx context.Context, s job, hs func() error) (uint64, error) {
	rfd, wfd := 3, 4
	if s.Duplex {
		wfd = 3
	}
	if err := hs(); err != nil {
		return 0, err
	}
	var v [2]uint64
	b := asBytes(v[:])
	for seq := uint64(0); ; seq++ {
		if _, err := readFull(rfd, b); err != nil {
			if errors.Is(err, io.EOF) {
				return seq, nil
			}
			return seq, err
		}
		if err := check(v[:], seq, true); err != nil {
			return seq, err
		}
		if err := writeAll(wfd, b); err != nil {
			return seq, err
		}
	}
}
