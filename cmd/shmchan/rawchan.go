package main

// rawchan.go: how record and replay move slot bytes without knowing their
// Go type. They use the small rawConn interface below and nothing else of
// a channel; openRawConn implements it with the root package's untyped
// handle, shmchan.RawChan.

import (
	"context"
	"errors"
	"fmt"

	"github.com/shmchan/shmchan"
)

// rawInfo is what record and replay need to know about a channel.
type rawInfo struct {
	shmchan.RawInfo
	Topology  string // layout.Mode's name: "spsc", "mpsc", "workqueue", "broadcast"
	Broadcast bool   // a receiver subscribes without consuming
}

// rawMsg is one value held by a receiver: its position in the channel and
// a copy of its slot bytes (reused by the next Hold).
type rawMsg = shmchan.RawMsg

// rawConn is an untyped handle on a channel.
type rawConn interface {
	Info() rawInfo
	// Hold waits for at least one value and fills msgs with up to
	// len(msgs) values without consuming them; Release consumes them (a
	// broadcast receiver's release only moves its own cursor). It takes a
	// receiver role on first use: entry 0 in SPSC and MPSC, a free
	// consumer entry in a work queue or broadcast, where a broadcast
	// receiver joins and sees the values sent from then on. A closed and
	// drained channel is shmchan.ErrClosed; a broadcast DropOldest
	// receiver that fell behind gets a *shmchan.LagError once per gap.
	Hold(ctx context.Context, msgs []rawMsg) (int, error)
	// Release consumes the first n values held.
	Release(n int) error
	// SendBatch sends values in order, blocking while the channel is
	// full; it takes a sender role on first use.
	SendBatch(ctx context.Context, vs [][]byte) (int, error)
	CloseSend() error
	Close() error
}

// openRawConn opens an existing channel untyped.
var openRawConn = openRawChan

// errReplaced: the region was removed and created again while it was
// being opened.
var errReplaced = errors.New("the region was replaced while it was being opened")

type rawChan struct {
	*shmchan.RawChan
	info rawInfo
}

func (r *rawChan) Info() rawInfo { return r.info }

func openRawChan(name string) (rawConn, error) {
	// The topology comes from the region's header, read through the
	// snapshot; the ID ties it to the region OpenRaw attached to.
	s, err := snapshotOne(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, describeOpenError(err))
	}
	if !s.Valid {
		return nil, fmt.Errorf("%s: %w", name, s.Err)
	}
	c, err := shmchan.OpenRaw(name)
	if err != nil {
		return nil, err
	}
	info := rawInfo{RawInfo: c.Info(), Topology: s.Topology, Broadcast: s.Broadcast}
	if info.ID != s.ID {
		c.Close()
		return nil, fmt.Errorf("%s: %w", name, errReplaced)
	}
	return &rawChan{RawChan: c, info: info}, nil
}
