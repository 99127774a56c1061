package main

// What ls, stat, watch and rm show of a region: package internal/region
// opens it read-only, maps its first pages PROT_READ, reads every word once
// under the fault guard and validates the header as the library does
// (region.Snapshot). This file turns that snapshot into the structure the
// tools print and encode as JSON; it reads no byte of a region itself.

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/layout"
)

// regionInfo is everything the tools show about one region; its JSON form
// is the output of 'stat -json' and each element of 'ls -json'.
type regionInfo struct {
	Name    string      `json:"name"`
	Path    string      `json:"path"`
	Size    int64       `json:"size"`
	Perm    fs.FileMode `json:"-"`
	PermStr string      `json:"perm"`
	UID     uint32      `json:"uid"`
	GID     uint32      `json:"gid"`
	Owner   string      `json:"owner"`
	Group   string      `json:"group"`
	ModTime time.Time   `json:"modified"`

	// Valid says whether the region passed every check (magic, version,
	// checksum, parameters, file size, ready word); Error says what failed.
	// Header is what the stored bytes say, checked or not.
	Valid  bool        `json:"valid"`
	Error  string      `json:"error,omitempty"`
	Ready  bool        `json:"ready"`
	Header *headerInfo `json:"header,omitempty"`

	State    string     `json:"state"`          // open, closed, damaged or not-ready
	Fill     *uint64    `json:"fill,omitempty"` // values queued (valid regions with sane indices)
	Counters *counters  `json:"counters,omitempty"`
	Roles    []roleInfo `json:"roles"`
	Bells    []bellInfo `json:"doorbells,omitempty"`
	Attached []int      `json:"attached_pids,omitempty"`

	snap region.Snapshot // what the fields above were made from
}

// headerInfo is the stored header, field by field, unchecked.
type headerInfo struct {
	Magic       string `json:"magic"`
	Version     uint32 `json:"version"`
	DataOffset  uint32 `json:"data_offset"`
	Mode        string `json:"mode"` // SPSC, MPSC, or MODE(N) for a bad value
	Wait        string `json:"wait"` // futex, mq, spin, or wait(N)
	Capacity    uint64 `json:"capacity"`
	SlotSize    uint32 `json:"slot_size"`
	MaxMsg      uint32 `json:"max_message"`
	Producers   uint32 `json:"producers"`
	Flags       uint32 `json:"flags"`
	Fingerprint string `json:"fingerprint"` // 16 hex digits (a JSON number would lose bits)
	TotalSize   uint64 `json:"total_size"`
	CreatorPID  uint32 `json:"creator_pid"`
	CreatorUID  uint32 `json:"creator_uid"`
	Created     int64  `json:"created_unix_nano"`
	Codec       string `json:"codec"`
	Type        string `json:"type"`
	Checksum    string `json:"checksum"`
	Computed    string `json:"checksum_computed"`
}

// counters are the mutable words of one snapshot.
type counters struct {
	Tail          uint64 `json:"tail_word"` // as stored, closed bit (63) included
	Sent          uint64 `json:"sent"`      // tail count: values sent (MPSC: claimed)
	Closed        bool   `json:"closed"`    // closed bit: CloseSend was called
	Head          uint64 `json:"received"`  // head: values received
	Abandoned     uint64 `json:"abandoned"`
	SenderWakes   uint64 `json:"sender_wakes"`
	ReceiverWakes uint64 `json:"receiver_wakes"`
	RecvSleeps    uint64 `json:"receiver_sleeps"`
	SendSleeps    uint64 `json:"sender_sleeps"`
	RecvWaiting   uint32 `json:"receiver_waiting"` // the word as stored
	SendWaiters   uint32 `json:"sender_waiters"`   // the word as stored
}

// roleInfo is one role entry: what its holder wrote there, and whether its
// role lock is held (the holder is alive).
type roleInfo struct {
	Entry     int    `json:"entry"`
	Role      string `json:"role"` // "receiver" or "sender"
	PID       uint32 `json:"pid"`
	State     string `json:"state"` // "alive", "dead" or "free"
	Alive     bool   `json:"alive"`
	Start     uint64 `json:"start_ticks"`
	Since     int64  `json:"since_unix_nano"`
	Sent      uint64 `json:"sent"`
	Takeovers uint64 `json:"takeovers"`
	Sleeping  bool   `json:"sleeping"`
}

// bellInfo is one doorbell queue of a WaitMQ region.
type bellInfo struct {
	Name    string `json:"name"`
	Exists  bool   `json:"exists"`
	Pending int64  `json:"pending,omitempty"`
	MaxMsg  int64  `json:"max_messages,omitempty"`
	Error   string `json:"error,omitempty"`
}

// inspect reads everything about one region. The error is for a name that
// cannot be looked at (absent, unreadable, not a regular file, not a
// region: region.ErrNotRegion); what is wrong with a region that could be
// read is in regionInfo.Error.
func inspect(name string) (*regionInfo, error) {
	s, err := region.Inspect(name)
	if err != nil {
		return nil, err
	}
	return infoOf(s), nil
}

// infoOf converts a snapshot.
func infoOf(s region.Snapshot) *regionInfo {
	r := &regionInfo{
		Name:    s.Name,
		Path:    s.Path,
		Size:    s.File.Size,
		Perm:    s.File.Mode,
		PermStr: s.File.Mode.String(),
		UID:     s.File.UID,
		GID:     s.File.GID,
		Owner:   userName(s.File.UID),
		Group:   groupName(s.File.GID),
		ModTime: s.File.ModTime,
		Valid:   s.Valid(),
		Ready:   s.Ready,
		Roles:   []roleInfo{},
		snap:    s,
	}
	if s.Err != nil {
		r.Error = s.Err.Error()
	}
	if d := s.Stored; d != nil {
		r.Header = &headerInfo{
			Magic:       d.Magic,
			Version:     d.Version,
			DataOffset:  d.DataOffset,
			Mode:        modeName(d.Mode),
			Wait:        d.Wait.String(),
			Capacity:    d.Capacity,
			SlotSize:    d.SlotSize,
			MaxMsg:      d.MaxMsg,
			Producers:   d.Producers,
			Flags:       uint32(d.Flags),
			Fingerprint: hex64(d.Fingerprint),
			TotalSize:   d.TotalSize,
			CreatorPID:  d.CreatorPID,
			CreatorUID:  d.CreatorUID,
			Created:     d.Created,
			Codec:       printable(d.CodecName),
			Type:        printable(d.TypeName),
			Checksum:    hex64(d.Checksum),
			Computed:    hex64(d.Computed),
		}
	}
	if st := s.Stats; st != nil {
		c := &counters{
			Tail:          st.Sent,
			Sent:          st.Sent,
			Closed:        st.Closed,
			Head:          st.Received,
			Abandoned:     st.Abandoned,
			SenderWakes:   st.SenderWakes,
			ReceiverWakes: st.ReceiverWakes,
			RecvSleeps:    st.RecvSleeps,
			SendSleeps:    st.SendSleeps,
			RecvWaiting:   s.RecvWaitWord,
			SendWaiters:   s.SendWaitWord,
		}
		if st.Closed {
			c.Tail |= layout.ClosedBit
		}
		r.Counters = c
	}
	for _, ro := range s.Roles {
		ri := roleInfo{
			Entry: ro.Index, Role: "sender", PID: ro.PID, Alive: ro.Alive,
			Start: ro.Start, Since: ro.Since, Sent: ro.Sent, Takeovers: ro.Takeovers,
			Sleeping: ro.Sleeping(),
		}
		if ro.Index == 0 && !s.Header.Mode.FanOut() || s.Valid() && isReceiverEntry(s.Header, ro.Index) {
			ri.Role = "receiver"
		}
		switch {
		case ro.Alive:
			ri.State = "alive"
		case ro.PID != 0:
			ri.State = "dead"
		default:
			ri.State = "free"
		}
		r.Roles = append(r.Roles, ri)
	}
	for _, b := range s.Bells {
		bi := bellInfo{Name: b.Name, Exists: b.Exists, Pending: b.Pending, MaxMsg: b.MaxMsg}
		if b.Err != nil {
			bi.Error = b.Err.Error()
		}
		r.Bells = append(r.Bells, bi)
	}
	r.State = state(r)
	if n, ok := r.fill(); ok {
		r.Fill = &n
	}
	return r
}

// hdr is the validated header (zero unless Valid).
func (r *regionInfo) hdr() layout.Header { return r.snap.Header }

func (r *regionInfo) isMPSC() bool { return r.Valid && r.snap.Header.Mode == layout.ModeMPSC }

// fill is the number of values queued; false if the region is not valid,
// has no counters, or its indices are impossible for its capacity.
func (r *regionInfo) fill() (uint64, bool) {
	if !r.Valid || r.snap.Stats == nil {
		return 0, false
	}
	return region.Fill(*r.snap.Stats, r.snap.Header.Capacity)
}

// state is a one-word summary: open, closed (CloseSend was called),
// damaged (does not validate), not-ready (creator not finished or dead).
func state(r *regionInfo) string {
	switch {
	case errors.Is(r.snap.Err, region.ErrNotReady):
		return "not-ready"
	case !r.Valid:
		return "damaged"
	case r.snap.Stats != nil && r.snap.Stats.Closed:
		return "closed"
	}
	return "open"
}

// liveRoles returns the live role entries.
func (r *regionInfo) liveRoles() []roleInfo {
	var live []roleInfo
	for _, ro := range r.Roles {
		if ro.Alive {
			live = append(live, ro)
		}
	}
	return live
}

// short is the role for ls: "recv 123 alive", "send 124 dead", and in
// MPSC "send#3 125 alive".
func (r roleInfo) short(mpsc bool) string {
	what := "recv"
	switch {
	case r.Role != "sender":
	case mpsc:
		what = fmt.Sprintf("send#%d", r.Entry)
	default:
		what = "send"
	}
	return fmt.Sprintf("%s %d %s", what, r.PID, r.State)
}

// describeOpenError turns an error opening a region into a short reason.
func describeOpenError(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such region"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}
