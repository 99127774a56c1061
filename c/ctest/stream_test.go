package ctest_test

// Streams of values between Go and C, both directions, SPSC and MPSC (C
// and Go producers mixed), in every wait mode: every value arrives once,
// intact, in each producer's order, and the close reaches the receiver.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
)

func waitOpt(w string) shmchan.Option {
	switch w {
	case "mq":
		return shmchan.WithWait(shmchan.WaitMQ)
	case "spin":
		return shmchan.WithWait(shmchan.WaitSpin)
	}
	return shmchan.WithWait(shmchan.WaitFutex)
}

// streamSize is the number of values of a stream in wait mode w.
func streamSize(w string) int {
	switch w {
	case "mq":
		return count(100_000)
	case "spin":
		return count(20_000)
	}
	return count(200_000)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestStreamGoToC(t *testing.T) {
	for _, w := range []string{"futex", "mq", "spin"} {
		t.Run(w, func(t *testing.T) {
			n := streamSize(w)
			name := testName(t)
			ch, err := shmchan.Create[[]byte](name, shmchan.WithCapacity(256), shmchan.WithMaxMessageSize(64), waitOpt(w))
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			p := startPeer(t, "recv", "name="+name, "kind=bytes", fmt.Sprint("total=", n), "close=1")
			p.ExpectPrefix("ready")
			ctx := ctxFor(t)
			for i := range n {
				if err := ch.Send(ctx, encodeBytes(uint64(i))); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if err := ch.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint("received ", n); p.ExpectPrefix("received") != want {
				t.Fatalf("C receiver: want %q", want)
			}
			p.Finish()
		})
	}
}

func TestStreamCToGo(t *testing.T) {
	for _, w := range []string{"futex", "mq", "spin"} {
		t.Run(w, func(t *testing.T) {
			n := streamSize(w)
			name := testName(t)
			p := startPeer(t, "send", "name="+name, "create=spsc", "kind=bytes", "cap=256", "max=64", "wait="+w,
				fmt.Sprint("count=", n), "close=1")
			p.ExpectPrefix("ready")
			// C created a []byte channel with the documented fingerprint.
			ch, err := shmchan.Open[[]byte](name, waitOpt(w))
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			ctx := ctxFor(t)
			for i := range n {
				v, err := ch.Recv(ctx)
				if err != nil {
					t.Fatalf("recv %d: %v", i, err)
				}
				if seq, ok := decodeBytes(v); !ok || seq != uint64(i) {
					t.Fatalf("value %d: got %x", i, v)
				}
			}
			if _, err := ch.Recv(ctx); !errors.Is(err, shmchan.ErrClosed) {
				t.Fatalf("after the stream: %v, want ErrClosed", err)
			}
			p.ExpectPrefix("done")
			p.Finish()
		})
	}
}

// goProducers runs one sender handle per id, each sending per values.
func goProducers(t *testing.T, name string, ids []uint64, per int, opts ...shmchan.Option) *sync.WaitGroup {
	var wg sync.WaitGroup
	ctx := ctxFor(t)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := shmchan.Open[rec](name, opts...)
			if err != nil {
				t.Error(err)
				return
			}
			defer ch.Close()
			for i := range per {
				if err := ch.Send(ctx, mkrec(seqOf(id, uint64(i)))); err != nil {
					t.Errorf("Go producer %d, value %d: %v", id, i, err)
					return
				}
			}
		}()
	}
	return &wg
}

// TestStreamMPSCToC: two C and two Go producers, a C receiver, on a
// channel Go created.
func TestStreamMPSCToC(t *testing.T) {
	for _, w := range []string{"futex", "mq"} {
		t.Run(w, func(t *testing.T) {
			per := streamSize(w) / 4
			name := testName(t)
			ch, err := shmchan.Create[rec](name, shmchan.WithMultiProducer(), shmchan.WithProducers(8),
				shmchan.WithCapacity(1024), waitOpt(w))
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			rx := startPeer(t, "recv", "name="+name, "kind=rec", fmt.Sprint("total=", 4*per))
			rx.ExpectPrefix("ready")
			var cs []*peer
			for _, id := range []int{1, 2} {
				cs = append(cs, startPeer(t, "send", "name="+name, "kind=rec", fmt.Sprint("id=", id), fmt.Sprint("count=", per)))
			}
			wg := goProducers(t, name, []uint64{3, 4}, per)
			for _, p := range cs {
				p.ExpectPrefix("done")
				p.Finish()
			}
			wg.Wait()
			rest := rx.Finish()
			want := []string{}
			for id := 1; id <= 4; id++ {
				want = append(want, fmt.Sprintf("producer %d %d", id, per))
			}
			want = append(want, fmt.Sprint("received ", 4*per))
			if strings.Join(rest, "\n") != strings.Join(want, "\n") {
				t.Fatalf("C receiver reported\n%s\nwant\n%s", strings.Join(rest, "\n"), strings.Join(want, "\n"))
			}
			if st := ch.Stats(); st.Abandoned != 0 || st.Received != uint64(4*per) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestStreamMPSCToGo: a raw channel C created with Go's fingerprint of
// rec; two C and two Go producers, a Go receiver.
func TestStreamMPSCToGo(t *testing.T) {
	for _, w := range []string{"futex", "mq"} {
		t.Run(w, func(t *testing.T) {
			per := streamSize(w) / 4
			name := testName(t)
			first := startPeer(t, "send", "name="+name, "create=mpsc", "producers=8", "cap=1024", "wait="+w, "kind=rec",
				fmt.Sprint("fp=", recFingerprint(t)), "id=1", fmt.Sprint("count=", per))
			first.ExpectPrefix("ready")
			ch, err := shmchan.Open[rec](name, shmchan.WithMultiProducer(), shmchan.WithProducers(8), waitOpt(w))
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			second := startPeer(t, "send", "name="+name, "kind=rec", "id=2", fmt.Sprint("count=", per))
			wg := goProducers(t, name, []uint64{3, 4}, per)
			next := map[uint64]uint64{}
			ctx := ctxFor(t)
			for i := range 4 * per {
				v, err := ch.Recv(ctx)
				if err != nil {
					t.Fatalf("recv %d: %v", i, err)
				}
				id, k := v.Seq>>40, v.Seq&(1<<40-1)
				if !v.ok() || id < 1 || id > 4 || k != next[id] {
					t.Fatalf("value %d: %+v (producer %d expects %d)", i, v, id, next[id])
				}
				next[id]++
			}
			for _, p := range []*peer{first, second} {
				p.ExpectPrefix("done")
				p.Finish()
			}
			wg.Wait()
			if _, err := ch.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
				t.Fatalf("after the stream: %v, want ErrEmpty", err)
			}
			// Any sender may close an MPSC channel, C included.
			closer := startPeer(t, "hold", "name="+name, "role=send")
			closer.ExpectPrefix("holding")
			if _, err := ch.Recv(ctx); !errors.Is(err, shmchan.ErrClosed) {
				t.Fatalf("after C's close_send: %v, want ErrClosed", err)
			}
		})
	}
}
