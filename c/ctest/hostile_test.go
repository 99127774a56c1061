package ctest_test

// Ring state written by a hostile peer: impossible indices and lengths make
// the C side return SHMCHAN_ECORRUPT at once, never hang or read outside
// its mapping.

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/layout"
)

func TestHostileRingFromC(t *testing.T) {
	le := binary.LittleEndian
	u64 := func(v uint64) []byte { return le.AppendUint64(nil, v) }
	type poke struct {
		off int
		b   []byte
	}
	slot0 := func(h layout.Header) int { return int(h.DataOffset) }
	cases := []struct {
		name  string
		mpsc  bool
		mode  string // the C peer's mode: recv or send
		pokes func(h layout.Header) []poke
		opts  []shmchan.Option
	}{
		{"tail more than a ring past head", false, "recv", func(h layout.Header) []poke {
			return []poke{{layout.OffTail, u64(h.Capacity + 1)}}
		}, nil},
		{"head past tail", false, "recv", func(h layout.Header) []poke {
			return []poke{{layout.OffHead, u64(9)}}
		}, nil},
		{"slot length over max_msg", false, "recv", func(h layout.Header) []poke {
			return []poke{{slot0(h) + layout.SlotLen, le.AppendUint32(nil, h.MaxMsg+1)}}
		}, nil},
		{"MPSC committed slot with length 2^31-1", true, "recv", func(h layout.Header) []poke {
			return []poke{{slot0(h) + layout.SlotLen, le.AppendUint32(nil, 1<<31-1)}}
		}, nil},
		{"SPSC sender: head past tail", false, "send", func(h layout.Header) []poke {
			return []poke{{layout.OffHead, u64(9)}}
		}, nil},
		{"MPSC sender: tail more than a ring past head", true, "send", func(h layout.Header) []poke {
			return []poke{{layout.OffTail, u64(h.Capacity + 3)}}
		}, nil},
		{"work queue: claim head past tail", false, "recv", func(h layout.Header) []poke {
			return []poke{{layout.OffClaimHead, u64(9)}}
		}, []shmchan.Option{shmchan.WithMultiConsumer(), shmchan.WithConsumers(2)}},
		{"work queue: head past claim head", false, "recv", func(h layout.Header) []poke {
			return []poke{{layout.OffHead, u64(2)}}
		}, []shmchan.Option{shmchan.WithMultiConsumer(), shmchan.WithConsumers(2)}},
		{"work queue: committed slot with length over max_msg", false, "recv", func(h layout.Header) []poke {
			return []poke{{slot0(h) + layout.SlotLen, le.AppendUint32(nil, h.MaxMsg+1)}}
		}, []shmchan.Option{shmchan.WithMultiConsumer(), shmchan.WithConsumers(2)}},
		{"work queue sender: tail more than a ring past head", false, "send", func(h layout.Header) []poke {
			return []poke{{layout.OffTail, u64(h.Capacity + 3)}}
		}, []shmchan.Option{shmchan.WithMultiConsumer(), shmchan.WithConsumers(2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := testName(t)
			opts := []shmchan.Option{shmchan.WithCapacity(8)}
			if tc.mpsc {
				opts = append(opts, shmchan.WithMultiProducer(), shmchan.WithProducers(2))
			}
			opts = append(opts, tc.opts...)
			c, err := shmchan.Create[rec](name, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := range 3 {
				if err := c.TrySend(mkrec(uint64(i))); err != nil {
					t.Fatal(err)
				}
			}
			c.Close() // frees the sender role for a C sender
			f, err := os.OpenFile(shmPath(name), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			hdr := make([]byte, layout.HeaderSize)
			if _, err := f.ReadAt(hdr, 0); err != nil {
				t.Fatal(err)
			}
			h, err := layout.Peek(hdr)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.pokes(h) {
				if _, err := f.WriteAt(p.b, int64(p.off)); err != nil {
					t.Fatal(err)
				}
			}
			p := startPeer(t, tc.mode, "name="+name, "kind=rec", "count=1000")
			var last string
			for l := range p.Lines {
				last = l
			}
			if !strings.HasPrefix(last, "error") || !strings.Contains(last, ": -5 ") {
				t.Fatalf("C %s printed %q, want ECORRUPT (-5)", tc.mode, last)
			}
			if err := p.Wait(); err == nil {
				t.Fatal("C peer exited 0")
			}
		})
	}
}
