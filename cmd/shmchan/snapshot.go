package main

// snapshot.go is the only place where doctor, metrics, record and replay
// read regions. They see a region as a regionSnap: plain values, read once
// and checked, with nothing of the reading machinery. Today it is built
// from what region.go offers (inspect, attachedPIDs); when region reading
// moves to internal/region this file is the one to re-point.

import (
	"io/fs"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan"
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

	Topology    string // "spsc" or "mpsc" (later "broadcast", "workqueue")
	Broadcast   bool   // receivers subscribe without consuming (none yet)
	Wait        shmchan.WaitMode
	Capacity    uint64
	MaxMsg      int
	SlotSize    int
	Producers   int // sender entries
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

// receiverSnap is one receiver's position: what it has consumed, and how
// far behind the senders it is.
type receiverSnap struct {
	Entry    int
	PID      uint32
	Alive    bool
	Position uint64
	Lag      uint64
	LagOK    bool
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

// snapshotOne reads one region. The error is for a name that cannot be
// looked at: fs.ErrNotExist, a permission error, errNotRegion.
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
	return fromRegion(r), nil
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
		out = append(out, fromRegion(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// allocated returns the bytes the filesystem holds for path (st_blocks).
func allocated(path string) int64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return -1
	}
	return st.Blocks * 512
}

func fromRegion(r *region) *regionSnap {
	s := &regionSnap{
		Name: r.Name, Path: r.Path, Size: r.Size, Alloc: allocated(r.Path),
		UID: r.UID, GID: r.GID, Owner: r.Owner, Perm: r.Perm, Mod: r.ModTime,
		Valid: r.Valid, Err: r.err, NotReady: r.Raw != nil && !r.Ready,
		AnyHeld: r.anyHeld, Attached: r.Attached,
	}
	if r.Valid {
		h := r.hdr
		s.Topology = "spsc"
		if h.Mode == layout.ModeMPSC {
			s.Topology = "mpsc"
		}
		s.Wait = shmchan.WaitMode(h.Wait)
		s.Capacity, s.MaxMsg, s.SlotSize, s.Producers = h.Capacity, int(h.MaxMsg), int(h.SlotSize), int(h.Producers)
		s.Raw = h.Flags&layout.FlagRaw != 0
		s.Fingerprint, s.Codec, s.Type, s.TotalSize, s.ID = h.Fingerprint, h.CodecName, h.TypeName, h.TotalSize, h.Checksum
	}
	if c := r.Counters; c != nil {
		s.HaveCounters = true
		s.Sent, s.Received, s.Closed = c.sent(), c.received(), c.closed()
		s.Abandoned, s.RecvSleeps, s.SendSleeps = c.Abandoned, c.RecvSleeps, c.SendSleeps
		s.SenderWakes, s.ReceiverWakes = c.SenderWakes, c.ReceiverWakes
		if r.Valid {
			s.Fill, s.FillOK = c.fill(r.hdr.Capacity)
		}
	}
	for _, ro := range r.Roles {
		s.Roles = append(s.Roles, roleSnap{
			Entry: ro.Entry, Receiver: ro.Role == "receiver", PID: ro.PID,
			Alive: ro.Alive, Dead: ro.State == "dead",
		})
	}
	if r.Valid && s.HaveCounters {
		// One receiver, at the head, in every topology there is today.
		rs := receiverSnap{Position: s.Received, Lag: s.Fill, LagOK: s.FillOK}
		for _, ro := range s.Roles {
			if ro.Receiver {
				rs.Entry, rs.PID, rs.Alive = ro.Entry, ro.PID, ro.Alive
			}
		}
		s.Receivers = []receiverSnap{rs}
	}
	for _, b := range r.Bells {
		s.Bells = append(s.Bells, bellSnap{Name: b.Name, Exists: b.Exists, Err: b.Error})
	}
	return s
}
