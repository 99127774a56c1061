package main

// rawchan.go: how record and replay move slot bytes without knowing their
// Go type. They use the small rawConn interface below and nothing else of
// a channel.
//
// The implementation here is interim: until the root package has its
// untyped API (shmchan.OpenRaw), a rawConn is a Chan[[]byte] with a codec
// that copies slot bytes as they are and presents itself with the codec
// name and fingerprint the region's header holds (read through
// snapshot.go). The library's own open then checks the header, takes the
// roles and does the waiting, exactly as for a typed channel. When OpenRaw
// lands, openRawConn wraps *shmchan.RawChan instead (Hold/Release map one
// to one) and passCodec goes away.

import (
	"context"
	"fmt"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/codec"
)

// rawInfo is what record and replay need to know about a channel.
type rawInfo struct {
	Codec       string
	Type        string
	Fingerprint uint64
	Raw         bool // values are a pointer-free type's bytes
	ValueSize   int  // raw: every value's length
	MaxMsg      int
	Capacity    int
	Topology    string
	Broadcast   bool // a receiver subscribes without consuming
}

// rawMsg is one value held by a receiver: its position in the channel and
// its slot bytes (valid until Release).
type rawMsg struct {
	Pos  uint64
	Data []byte
}

// rawConn is an untyped handle on a channel.
type rawConn interface {
	Info() rawInfo
	// Hold waits for at least one value and fills msgs with up to
	// len(msgs) values; they stay valid until Release. It takes the
	// receiver role on first use. A closed and drained channel is
	// shmchan.ErrClosed.
	Hold(ctx context.Context, msgs []rawMsg) (int, error)
	// Release lets go of the first n values held.
	Release(n int) error
	// SendBatch sends values in order, blocking while the channel is
	// full; it takes a sender role on first use.
	SendBatch(ctx context.Context, vs [][]byte) (int, error)
	CloseSend() error
	Close() error
}

// openRawConn opens an existing channel untyped.
var openRawConn = openPassConn

// passConn is the interim rawConn.
type passConn struct {
	c    *shmchan.Chan[[]byte]
	info rawInfo
	bufs [][]byte
	pos  uint64
}

func openPassConn(name string) (rawConn, error) {
	s, err := snapshotOne(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, describeOpenError(err))
	}
	if !s.Valid {
		return nil, fmt.Errorf("%s: %w", name, s.Err)
	}
	info := rawInfo{
		Codec: s.Codec, Type: s.Type, Fingerprint: s.Fingerprint, Raw: s.Raw,
		MaxMsg: s.MaxMsg, Capacity: int(s.Capacity), Topology: s.Topology, Broadcast: s.Broadcast,
	}
	if s.Raw {
		info.ValueSize = s.MaxMsg
	}
	pc := &passCodec{name: s.Codec, typ: s.Type, fp: s.Fingerprint}
	c, err := shmchan.Open[[]byte](name, shmchan.WithCodec[[]byte](pc))
	if err != nil {
		return nil, err
	}
	return &passConn{c: c, info: info}, nil
}

func (p *passConn) Info() rawInfo { return p.info }

func (p *passConn) Hold(ctx context.Context, msgs []rawMsg) (int, error) {
	if len(p.bufs) < len(msgs) {
		p.bufs = make([][]byte, len(msgs))
	}
	n, err := p.c.RecvBatch(ctx, p.bufs[:len(msgs)])
	for i := 0; i < n; i++ {
		msgs[i] = rawMsg{Pos: p.pos, Data: p.bufs[i]}
		p.pos++
	}
	return n, err
}

// Release: RecvBatch has consumed the values already; their bytes are
// this process's copies.
func (p *passConn) Release(n int) error { return nil }

func (p *passConn) SendBatch(ctx context.Context, vs [][]byte) (int, error) {
	return p.c.SendBatch(ctx, vs)
}

func (p *passConn) CloseSend() error { return p.c.CloseSend() }
func (p *passConn) Close() error     { return p.c.Close() }

// passCodec carries slot bytes unchanged, under the codec name and
// fingerprint of the region it was made for.
type passCodec struct {
	name, typ string
	fp        uint64
}

func (c *passCodec) Name() string        { return c.name }
func (c *passCodec) Fingerprint() uint64 { return c.fp }
func (c *passCodec) TypeName() string    { return c.typ }
func (c *passCodec) FixedSize() int      { return 0 }

func (c *passCodec) Encode(dst []byte, v *[]byte) (int, error) {
	if len(*v) > len(dst) {
		return 0, fmt.Errorf("%w: %d bytes, the slot holds %d", codec.ErrTooLarge, len(*v), len(dst))
	}
	return copy(dst, *v), nil
}

func (c *passCodec) Decode(src []byte, v *[]byte) error {
	*v = append([]byte(nil), src...)
	return nil
}
