package main

// snapshot.go is how doctor, metrics, record and replay see regions: a
// regionSnap, plain values with nothing of the reading machinery. It is
// made from the regionInfo that ls and stat use (inspect.go), that is from
// one region.Snapshot (internal/region reads every word once, under the
// fault guard, and validates the header as the library does): there is no
// second way of reading a region.

import (
	"errors"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/shm"
)

// regionSnap is one region as the tools see it.
type regionSnap struct {
	Name  string // without a leading slash
	Path  string
	Size  int64 // file size in bytes
	Alloc int64 // bytes the filesystem has allocated to it
	UID   uint32
	GID   uint32
	Owner string // user name, or the uid in decimal
	Perm  fs.FileMode
	Mod   time.Time

	// Valid: the header passed every check and the ready word is set. Err
	// says what is wrong otherwise. The header fields below are meaningful
	// only when Valid.
	Valid    bool
	Err      error
	NotReady bool // the ready word is not set (creator still busy or dead)

	Topology    string // layout.Mode's name: "spsc", "mpsc", "workqueue", "broadcast"
	Broadcast   bool   // receivers subscribe without consuming
	DropOldest  bool   // broadcast: senders overwrite what a slow receiver has not read
	Overflow    string // broadcast: "wait-for-slowest" or "drop-oldest"
	Wait        shmchan.WaitMode
	Capacity    uint64
	MaxMsg      int
	SlotSize    int
	Producers   int // sender entries
	Consumers   int // receiver entries of a work queue or broadcast (0 otherwise)
	Raw         bool
	Fingerprint uint64
	Codec       string
	Type        string
	TotalSize   uint64
	ID          uint64 // the header's checksum: one creation of the region

	// Counters, read once each; HaveCounters false if the file was too
	// short for them.
	HaveCounters  bool
	Sent          uint64
	Received      uint64
	Closed        bool
	Abandoned     uint64
	RecvSleeps    uint64
	SendSleeps    uint64
	SenderWakes   uint64 // wake-ups senders gave the receiver(s)
	ReceiverWakes uint64 // wake-ups receivers gave the senders
	Fill          uint64 // values queued
	FillOK        bool   // false: the indices are impossible

	Roles     []roleSnap
	AnyHeld   bool // some role lock is held, whatever the header says
	Receivers []receiverSnap
	Attached  []int // pids (other than ours) with the region open
	Bells     []bellSnap
}

// roleSnap is one role entry that is or was in use.
type roleSnap struct {
	Entry    int
	Receiver bool
	PID      uint32
	Alive    bool // its role lock is held
	Dead     bool // a pid is written but nobody holds the lock
}

// receiverSnap is one receiver: in SPSC and MPSC the one at entry 0, in a
// work queue or broadcast each consumer entry in use.
type receiverSnap struct {
	Entry int
	PID   uint32
	Alive bool

	// Position is the next position it receives: the head (SPSC, MPSC), a
	// broadcast receiver's cursor, a work-queue receiver's claim while it
	// holds one (PositionOK false otherwise).
	Position   uint64
	PositionOK bool
	// Lag is how far behind the senders it is (tail count - Position;
	// SPSC, MPSC and broadcast), LagOK false if not meaningful (a work
	// queue's receivers share one queue) or impossible (a cursor past the
	// tail).
	Lag   uint64
	LagOK bool
	// Joined: a broadcast receiver that subscribed and has not left (its
	// cursor is read by senders, and gates them under WaitForSlowest).
	Joined bool
	// Holding: a work-queue receiver holds position Position (received,
	// not yet released).
	Holding bool
	// Received counts the values this entry received (work queue and
	// broadcast; HaveReceived false for SPSC and MPSC, which count them in
	// the head).
	Received     uint64
	HaveReceived bool
}

// bellSnap is one doorbell queue of a WaitMQ region.
type bellSnap struct {
	Name   string // with the leading slash
	Exists bool
	Err    string
}

// liveRoles counts the live receiver and sender roles.
func (s *regionSnap) liveRoles() (receivers, senders int) {
	for _, r := range s.Roles {
		switch {
		case !r.Alive:
		case r.Receiver:
			receivers++
		default:
			senders++
		}
	}
	return receivers, senders
}

// deadRoles counts the roles whose holder died without letting go.
func (s *regionSnap) deadRoles() (receivers, senders int) {
	for _, r := range s.Roles {
		switch {
		case !r.Dead:
		case r.Receiver:
			receivers++
		default:
			senders++
		}
	}
	return receivers, senders
}

// fanOut reports a work queue or broadcast: receivers at consumer entries.
func (s *regionSnap) fanOut() bool { return s.Consumers > 0 }

// snapshotOne reads one region. The error is for a name that cannot be
// looked at: fs.ErrNotExist, a permission error, region.ErrNotRegion.
func snapshotOne(name string) (*regionSnap, error) {
	name, err := cleanArg(name)
	if err != nil {
		return nil, err
	}
	r, err := inspect(name)
	if err != nil {
		return nil, err
	}
	r.Attached = attachedPIDs()[r.Path]
	return snapOf(r), nil
}

// snapshotAll reads every region in /dev/shm whose name starts with
// prefix, sorted by name. Files that are not regions, or vanish, or cannot
// be opened are left out.
func snapshotAll(prefix string) ([]*regionSnap, error) {
	names, err := shm.List(shmDir)
	if err != nil {
		return nil, err
	}
	prefix = strings.TrimPrefix(prefix, "/")
	attached := attachedPIDs()
	var out []*regionSnap
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		r, err := inspect(name)
		if err != nil {
			continue
		}
		r.Attached = attached[r.Path]
		out = append(out, snapOf(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// isReceiverEntry reports whether role entry i of a region with header h
// is a receiver's: entry 0 in SPSC and MPSC, the consumer entries
// (1+Producers and up) in a work queue or broadcast.
func isReceiverEntry(h layout.Header, i int) bool {
	if h.Mode.FanOut() {
		return i >= h.ConsumerEntry(0) && i < h.Entries()
	}
	return i == 0
}

func snapOf(r *regionInfo) *regionSnap {
	sn := r.snap
	s := &regionSnap{
		Name: r.Name, Path: r.Path, Size: r.Size, Alloc: sn.File.Blocks * 512,
		UID: r.UID, GID: r.GID, Owner: r.Owner, Perm: r.Perm, Mod: r.ModTime,
		Valid: r.Valid, Err: sn.Err, NotReady: errors.Is(sn.Err, region.ErrNotReady),
		AnyHeld: sn.AnyHeld, Attached: r.Attached,
	}
	h := sn.Header
	if s.Valid {
		s.Topology = h.Mode.String()
		s.Broadcast = h.Mode == layout.ModeBroadcast
		s.DropOldest = s.Broadcast && h.Overflow == layout.OverflowDrop
		if s.Broadcast {
			s.Overflow = h.Overflow.String()
		}
		s.Wait = shmchan.WaitMode(h.Wait)
		s.Capacity, s.MaxMsg, s.SlotSize = h.Capacity, int(h.MaxMsg), int(h.SlotSize)
		s.Producers, s.Consumers = int(h.Producers), int(h.Consumers)
		s.Raw = h.Flags&layout.FlagRaw != 0
		s.Fingerprint, s.Codec, s.Type, s.TotalSize, s.ID = h.Fingerprint, h.CodecName, h.TypeName, h.TotalSize, h.Checksum
	}
	if c := r.Counters; c != nil {
		s.HaveCounters = true
		s.Sent, s.Received, s.Closed = c.Sent, c.Head, c.Closed
		s.Abandoned, s.RecvSleeps, s.SendSleeps = c.Abandoned, c.RecvSleeps, c.SendSleeps
		s.SenderWakes, s.ReceiverWakes = c.SenderWakes, c.ReceiverWakes
		if r.Fill != nil {
			s.Fill, s.FillOK = *r.Fill, true
		}
	}
	for _, ro := range sn.Roles {
		rs := roleSnap{Entry: ro.Index, PID: ro.PID, Alive: ro.Alive, Dead: !ro.Alive && ro.PID != 0}
		// A damaged header: entry 0 is the receiver's as in the first
		// topologies (the roles are shown, not acted on).
		rs.Receiver = ro.Index == 0
		if s.Valid {
			rs.Receiver = isReceiverEntry(h, ro.Index)
		}
		s.Roles = append(s.Roles, rs)
	}
	if s.Valid && s.HaveCounters {
		s.Receivers = receiversOf(s, sn)
	}
	for _, b := range r.Bells {
		s.Bells = append(s.Bells, bellSnap{Name: b.Name, Exists: b.Exists, Err: b.Error})
	}
	return s
}

// receiversOf lists the receivers of a valid region with counters.
func receiversOf(s *regionSnap, sn region.Snapshot) []receiverSnap {
	h := sn.Header
	if !h.Mode.FanOut() {
		// One receiver, at the head.
		rs := receiverSnap{Position: s.Received, PositionOK: true, Lag: s.Fill, LagOK: s.FillOK}
		for _, ro := range sn.Roles {
			if ro.Index == 0 {
				rs.PID, rs.Alive = ro.PID, ro.Alive
			}
		}
		return []receiverSnap{rs}
	}
	var out []receiverSnap
	for _, ro := range sn.Roles {
		if !isReceiverEntry(h, ro.Index) {
			continue
		}
		rs := receiverSnap{Entry: ro.Index, PID: ro.PID, Alive: ro.Alive, Received: ro.Sent, HaveReceived: true}
		switch h.Mode {
		case layout.ModeBroadcast:
			rs.Joined = ro.Flags&layout.RoleJoined != 0
			rs.Position, rs.PositionOK = ro.ClaimLo, true // layout.RoleCursor
			// A cursor at most the tail count; with WaitForSlowest a
			// joined one at most a ring behind it (it gates the senders).
			if c := ro.ClaimLo; c <= s.Sent && (s.DropOldest || !rs.Joined || s.Sent-c <= s.Capacity) {
				rs.Lag, rs.LagOK = s.Sent-c, true
			}
		case layout.ModeWorkQueue:
			lo, hi := ro.ClaimLo, ro.ClaimHi
			if hi > lo && hi-lo <= s.Capacity && hi <= s.Sent {
				rs.Holding, rs.Position, rs.PositionOK = true, lo, true
			}
		}
		out = append(out, rs)
	}
	return out
}
