package main

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

// benchProcInt reads an integer from a /proc file, or returns def.
func benchProcInt(path string, def int) int {
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
	benchMsgSizeMaxPath = "/proc/sys/fs/mqueue/msgsize_max"
	benchMsgMaxPath     = "/proc/sys/fs/mqueue/msg_max"
)

// benchMQNA says why POSIX mq cannot carry a size.
func benchMQNA(size int) string {
	if m := benchProcInt(benchMsgSizeMaxPath, 8192); size > m {
		return fmt.Sprintf("POSIX mq: larger than msgsize_max (%d B, %s)", m, benchMsgSizeMaxPath)
	}
	return ""
}

// benchMQCapacity is the deepest queue an unprivileged process may create.
func benchMQCapacity() int { return max(1, benchProcInt(benchMsgMaxPath, 10)) }

func benchMQCreate(e *benchEnv, size int) (string, *mq.Queue, error) {
	name := e.newName("mq")
	e.clean.addMQ(name)
	q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &mq.Attr{MaxMsg: int64(benchMQCapacity()), MsgSize: int64(size)})
	if err != nil {
		e.clean.unlinkMQ(name)
		return "", nil, err
	}
	return name, q, nil
}

// benchMQThroughput: the peer mq_sends one value per call, the parent
// mq_receives and checks; a zero-length message ends the run.
func benchMQThroughput(ctx context.Context, e *benchEnv, size int) (benchSample, error) {
	warm := benchWarm(size)
	name, q, err := benchMQCreate(e, size)
	if err != nil {
		return benchSample{}, err
	}
	defer e.clean.unlinkMQ(name)
	defer q.Close()
	p, err := e.startPeer(benchPeerSpec{Role: "mq-send", Size: size, Names: []string{name}, Warm: warm, Budget: e.cfg.budget, Corrupt: e.corruptAt})
	if err != nil {
		return benchSample{}, err
	}
	if err := p.ready(); err != nil {
		return benchSample{}, err
	}
	e.clean.unlinkMQ(name)
	mctx, stop, err := p.start(ctx)
	if err != nil {
		return benchSample{}, err
	}
	buf := make([]uint64, size/8)
	b := benchBytes(buf)
	var seq uint64
	var rerr error
	meter := newBenchMeter(warm, e.cfg.budget, nil)
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
			rerr = benchVerifyf("value %d: message of %d bytes, want %d", seq, n, size)
			break
		}
		if rerr = benchCheck(buf, seq, seq%benchFullEvery == 0); rerr != nil {
			break
		}
		seq++
		meter.got(seq)
	}
	meter.stop()
	stop()
	return benchFinishThroughput(p, rerr, seq, meter)
}

// benchFinishThroughput collects the peer's result and makes the sample of
// a row that counts no system calls.
func benchFinishThroughput(p *benchPeer, rerr error, seq uint64, meter *benchMeter) (benchSample, error) {
	res, err := p.finish(rerr)
	if err != nil {
		return benchSample{}, err
	}
	if res.Count != seq {
		return benchSample{}, benchVerifyf("the peer sent %d values, %d arrived", res.Count, seq)
	}
	n, rate, err := meter.result(seq)
	if err != nil {
		return benchSample{}, err
	}
	return benchUncounted(rate, n), nil
}

func benchMQSend(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	q, err := mq.Open(s.Names[0], os.O_WRONLY, 0, nil)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	if err := hs(); err != nil {
		return 0, err
	}
	buf := make([]uint64, s.Size/8)
	benchFill(buf, 0)
	b := benchBytes(buf)
	n, err := benchSendLoop(s, func(seq uint64) (int, error) {
		benchStamp(buf, seq)
		benchCorrupt(buf, seq, &s)
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

// benchMQLatency: round trips over two queues.
func benchMQLatency(ctx context.Context, e *benchEnv, _ int) (benchSample, error) {
	var names []string
	var qs []*mq.Queue
	for range 2 {
		name, q, err := benchMQCreate(e, 16)
		if err != nil {
			return benchSample{}, err
		}
		defer e.clean.unlinkMQ(name)
		defer q.Close()
		names, qs = append(names, name), append(qs, q)
	}
	p, err := e.startPeer(benchPeerSpec{Role: "mq-echo", Size: 16, Names: names, Budget: e.cfg.latBudget})
	if err != nil {
		return benchSample{}, err
	}
	if err := p.ready(); err != nil {
		return benchSample{}, err
	}
	for _, n := range names {
		e.clean.unlinkMQ(n)
	}
	mctx, stop, err := p.start(ctx)
	if err != nil {
		return benchSample{}, err
	}
	defer stop()
	var v, r [2]uint64
	var rounds uint64
	s, rerr := benchMeasureRTT(mctx, e, func(seq uint64) error {
		benchStamp(v[:], seq)
		if err := qs[0].Send(mctx, benchBytes(v[:]), 0); err != nil {
			return err
		}
		n, _, err := qs[1].Receive(mctx, benchBytes(r[:]))
		if err != nil {
			return err
		}
		if n != 16 {
			return benchVerifyf("echo %d: %d bytes, want 16", seq, n)
		}
		if err := benchCheck(r[:], seq, true); err != nil {
			return err
		}
		rounds++
		return nil
	})
	if rerr == nil {
		rerr = qs[0].Send(mctx, nil, 0)
	}
	return benchFinishRTT(p, rerr, s, rounds)
}

// benchFinishRTT collects an echo peer's result.
func benchFinishRTT(p *benchPeer, rerr error, s benchSample, rounds uint64) (benchSample, error) {
	res, err := p.finish(rerr)
	if err != nil {
		return benchSample{}, err
	}
	if res.Count != rounds {
		return benchSample{}, benchVerifyf("the peer echoed %d values, %d came back", res.Count, rounds)
	}
	return s, nil
}

func benchMQEcho(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
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
	b := benchBytes(v[:])
	for seq := uint64(0); ; seq++ {
		n, _, err := ping.Receive(ctx, b)
		if err != nil {
			return seq, err
		}
		if n == 0 {
			return seq, nil
		}
		if n != 16 {
			return seq, benchVerifyf("ping %d: %d bytes, want 16", seq, n)
		}
		if err := benchCheck(v[:], seq, true); err != nil {
			return seq, err
		}
		if err := pong.Send(ctx, b, 0); err != nil {
			return seq, err
		}
	}
}

// benchPipeSize is what pipes are grown to (F_SETPIPE_SZ, best effort), so
// that a pipe holds about what a shmchan region of 1 MiB values does.
const benchPipeSize = 1 << 20

// benchStreamPair returns the parent's descriptor and the peer's end of a
// new pipe (parent reads, peer writes; reverse: the other way round) or
// Unix stream socket pair.
func benchStreamPair(kind string, reverse bool) (int, *os.File, error) {
	switch kind {
	case "pipe":
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return -1, nil, fmt.Errorf("pipe2: %w", err)
		}
		_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, benchPipeSize)
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

// benchReadFull reads len(b) bytes from fd; a clean end of file before the
// first byte is (0, io.EOF).
func benchReadFull(fd int, b []byte) (int, error) {
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

func benchWriteAll(fd int, b []byte) error {
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

// benchStreamThroughput returns the run function of a pipe or socket row:
// the peer writes values (batch of them per write when batched), the
// parent reads (one value per read, or whatever one read returns when
// batched) and checks them; end of file ends the run.
func benchStreamThroughput(kind string, batched bool) func(context.Context, *benchEnv, int) (benchSample, error) {
	return func(ctx context.Context, e *benchEnv, size int) (benchSample, error) {
		warm := benchWarm(size)
		batch := 1
		if batched {
			_, batch = benchGeometry(size)
		}
		fd, theirs, err := benchStreamPair(kind, false)
		if err != nil {
			return benchSample{}, err
		}
		defer unix.Close(fd)
		p, err := e.startPeer(benchPeerSpec{Role: "stream-send", Size: size, Warm: warm, Budget: e.cfg.budget, Batch: batch, Corrupt: e.corruptAt}, theirs)
		if err != nil {
			return benchSample{}, err
		}
		if err := p.ready(); err != nil {
			return benchSample{}, err
		}
		// A read that never returns ends when start's watcher kills the
		// peer (at the deadline of ctx, or if it fails): end of file.
		_, stop, err := p.start(ctx)
		if err != nil {
			return benchSample{}, err
		}
		words := size / 8
		buf := make([]uint64, batch*words)
		b := benchBytes(buf)
		var seq uint64
		var rerr error
		meter := newBenchMeter(warm, e.cfg.budget, nil)
		check := func(w []uint64) error {
			if err := benchCheck(w, seq, seq%benchFullEvery == 0); err != nil {
				return err
			}
			seq++
			meter.got(seq)
			return nil
		}
		if !batched {
			for {
				n, err := benchReadFull(fd, b)
				if err == io.EOF {
					break
				}
				if err == io.ErrUnexpectedEOF {
					rerr = benchVerifyf("value %d: stream ended after %d of its %d bytes", seq, n, size)
					break
				}
				if err != nil {
					rerr = err
					break
				}
				if rerr = check(buf); rerr != nil {
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
						rerr = benchVerifyf("value %d: stream ended after %d of its %d bytes", seq, have, size)
					}
					break
				}
				have += n
				whole := have / size
				for i := 0; i < whole && rerr == nil; i++ {
					rerr = check(buf[i*words : (i+1)*words])
				}
				if rerr != nil {
					break
				}
				have = copy(b, b[whole*size:have])
			}
		}
		meter.stop()
		stop()
		return benchFinishThroughput(p, rerr, seq, meter)
	}
}

// benchStreamSend is the peer of the pipe and socket rows: descriptor 3.
func benchStreamSend(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	const fd = 3
	if err := hs(); err != nil {
		return 0, err
	}
	words := s.Size / 8
	batch := max(1, s.Batch)
	buf := make([]uint64, batch*words)
	for i := range batch {
		benchFill(buf[i*words:(i+1)*words], 0)
	}
	b := benchBytes(buf)
	n, err := benchSendLoop(s, func(seq uint64) (int, error) {
		for i := range batch {
			w := buf[i*words : (i+1)*words]
			benchStamp(w, seq+uint64(i))
			benchCorrupt(w, seq+uint64(i), &s)
		}
		if err := benchWriteAll(fd, b); err != nil {
			return 0, err
		}
		return batch, nil
	})
	if err != nil {
		return n, err
	}
	return n, unix.Close(fd) // end of file for the parent
}

// benchStreamLatency returns the run function of a pipe (two pipes) or
// socket (one pair, both ways) round-trip row.
func benchStreamLatency(kind string) func(context.Context, *benchEnv, int) (benchSample, error) {
	return func(ctx context.Context, e *benchEnv, _ int) (benchSample, error) {
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
			w, theirsR, err := benchStreamPair("pipe", true) // parent writes pings
			if err != nil {
				return benchSample{}, err
			}
			wfd = w
			r, theirsW, err := benchStreamPair("pipe", false) // parent reads pongs
			if err != nil {
				theirsR.Close()
				return benchSample{}, err
			}
			rfd = r
			files = []*os.File{theirsR, theirsW}
		} else {
			fd, theirs, err := benchStreamPair(kind, false)
			if err != nil {
				return benchSample{}, err
			}
			wfd, rfd, files = fd, fd, []*os.File{theirs}
		}
		p, err := e.startPeer(benchPeerSpec{Role: "stream-echo", Size: 16, Budget: e.cfg.latBudget, Duplex: kind != "pipe"}, files...)
		if err != nil {
			return benchSample{}, err
		}
		if err := p.ready(); err != nil {
			return benchSample{}, err
		}
		mctx, stop, err := p.start(ctx)
		if err != nil {
			return benchSample{}, err
		}
		defer stop()
		var v, r [2]uint64
		var rounds uint64
		s, rerr := benchMeasureRTT(mctx, e, func(seq uint64) error {
			benchStamp(v[:], seq)
			if err := benchWriteAll(wfd, benchBytes(v[:])); err != nil {
				return err
			}
			if _, err := benchReadFull(rfd, benchBytes(r[:])); err != nil {
				return fmt.Errorf("reading echo %d: %w", seq, err)
			}
			if err := benchCheck(r[:], seq, true); err != nil {
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
		return benchFinishRTT(p, rerr, s, rounds)
	}
}

// benchStreamEcho is the peer of the pipe and socket round trips: it reads
// from descriptor 3 and writes back to 4 (or to 3 for a socket).
func benchStreamEcho(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	rfd, wfd := 3, 4
	if s.Duplex {
		wfd = 3
	}
	if err := hs(); err != nil {
		return 0, err
	}
	var v [2]uint64
	b := benchBytes(v[:])
	for seq := uint64(0); ; seq++ {
		if _, err := benchReadFull(rfd, b); err != nil {
			if errors.Is(err, io.EOF) {
				return seq, nil
			}
			return seq, err
		}
		if err := benchCheck(v[:], seq, true); err != nil {
			return seq, err
		}
		if err := benchWriteAll(wfd, b); err != nil {
			return seq, err
		}
	}
}
