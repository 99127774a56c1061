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
	Mode        string `json:"mode"` // SPSC, MPSC, WORKQUEUE, BROADCAST, or MODE(N) for a bad value
	Wait        string `json:"wait"` // futex, mq, spin, or wait(N)
	Capacity    uint64 `json:"capacity"`
	SlotSize    uint32 `json:"slot_size"`
	MaxMsg      uint32 `json:"max_message"`
	Producers   uint32 `json:"producers"`
	Consumers   uint32 `json:"consumers"`          // receiver entries of a work queue or broadcast; 0 otherwise
	Overflow    string `json:"overflow,omitempty"` // broadcast: wait-for-slowest or drop-oldest
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
	Tail      uint64 `json:"tail_word"` // as stored, closed bit (63) included
	Sent      uint64 `json:"sent"`      // tail count: values sent (MPSC: claimed)
	Closed    bool   `json:"closed"`    // closed bit: CloseSend was called
	Head      uint64 `json:"received"`  // head: values received (broadcast: the lowest bound a sender saw)
	Abandoned uint64 `json:"abandoned"`
	// ClaimHead: work queue, positions handed out to receivers (those in
	// [received, claim_head) are being received). Lagged: broadcast
	// DropOldest, values receivers missed, summed over them.
	ClaimHead     *uint64 `json:"claim_head,omitempty"`
	Lagged        *uint64 `json:"lagged,omitempty"`
	SenderWakes   uint64  `json:"sender_wakes"`
	ReceiverWakes uint64  `json:"receiver_wakes"`
	RecvSleeps    uint64  `json:"receiver_sleeps"`
	SendSleeps    uint64  `json:"sender_sleeps"`
	RecvWaiting   uint32  `json:"receiver_waiting"` // the word as stored
	SendWaiters   uint32  `json:"sender_waiters"`   // the word as stored
}

// roleInfo is one role entry: what its holder wrote there, and whether its
// role lock is held (the holder is alive).
type roleInfo struct {
	Entry     int    `json:"entry"`
	Role      string `json:"role"` // "receiver", "sender", or "unknown" (a lock past the header's entries)
	PID       uint32 `json:"pid"`
	State     string `json:"state"` // "alive", "dead" or "free"
	Alive     bool   `json:"alive"`
	Start     uint64 `json:"start_ticks"`
	Since     int64  `json:"since_unix_nano"`
	Sent      uint64 `json:"sent"`
	Takeovers uint64 `json:"takeovers"`
	Sleeping  bool   `json:"sleeping"`

	// Receivers of a work queue or broadcast: Consumer is the entry's
	// index among the consumer entries, Received the values it received.
	// A work-queue receiver's Claim is the position it holds (claimed,
	// not yet received), absent when it holds none. A broadcast
	// receiver's Cursor is the next position it reads and Lag the values
	// it has still to read (tail count - cursor; past the capacity, with
	// drop-oldest, the excess is lost), both while it is Joined (it gates
	// wait-for-slowest senders); absent for a cursor ahead of the tail.
	Consumer *int    `json:"consumer,omitempty"`
	Received *uint64 `json:"received,omitempty"`
	Claim    *uint64 `json:"claim,omitempty"`
	Joined   *bool   `json:"joined,omitempty"`
	Cursor   *uint64 `json:"cursor,omitempty"`
	Lag      *uint64 `json:"lag,omitempty"`
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
			Consumers:   d.Consumers,
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
		if d.Mode == layout.ModeBroadcast || d.Overflow != 0 {
			r.Header.Overflow = d.Overflow.String()
		}
	}
	mode, producers, consumers := entriesOf(s)
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
		switch mode {
		case layout.ModeWorkQueue:
			c.ClaimHead = ptr(s.ClaimHead)
		case layout.ModeBroadcast:
			c.Lagged = ptr(s.Lagged)
		}
		r.Counters = c
	}
	for _, ro := range s.Roles {
		ri := roleInfo{
			Entry: ro.Index, Role: "sender", PID: ro.PID, Alive: ro.Alive,
			Start: ro.Start, Since: ro.Since, Sent: ro.Sent, Takeovers: ro.Takeovers,
			Sleeping: ro.Sleeping(),
		}
		k := ro.Index - 1 - producers
		switch {
		case ro.Index == 0:
			ri.Role = "receiver"
		case k >= consumers:
			ri.Role = "unknown"
		case k >= 0:
			ri.Role, ri.Consumer, ri.Sent, ri.Received = "receiver", ptr(k), 0, ptr(ro.Sent)
			switch mode {
			case layout.ModeWorkQueue:
				if p, ok := ro.Claim(); ok {
					ri.Claim = ptr(p)
				}
			case layout.ModeBroadcast:
				ri.Joined = ptr(ro.Joined())
				if ro.Joined() && s.Stats != nil {
					ri.Cursor = ptr(ro.ClaimLo) // layout.RoleCursor
					if lag, ok := region.Lag(ro.ClaimLo, s.Stats.Sent); ok {
						ri.Lag = ptr(lag)
					}
				}
			}
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

func ptr[T any](v T) *T { return &v }

// entriesOf says how to read the role entries of a snapshot: the mode and
// the numbers of sender and consumer entries of the validated header, or
// else of the stored one as far as it is possible (the snapshot lists
// entries of a damaged header by the same bounds).
func entriesOf(s region.Snapshot) (layout.Mode, int, int) {
	if s.Valid() {
		return s.Header.Mode, int(s.Header.Producers), int(s.Header.Consumers)
	}
	if d := s.Stored; d != nil {
		return d.Mode, int(min(d.Producers, layout.MaxProducers)), int(min(d.Consumers, layout.MaxConsumers))
	}
	return layout.ModeSPSC, 0, 0
}

// hdr is the validated header (zero unless Valid).
func (r *regionInfo) hdr() layout.Header { return r.snap.Header }

// multiSender: the senders are many (every mode but SPSC), numbered by
// their entries, with a count of their own and a count of sleepers.
func (r *regionInfo) multiSender() bool { return r.Valid && r.snap.Header.Mode != layout.ModeSPSC }

// fanOut: a work queue or broadcast, whose receivers are consumer entries.
func (r *regionInfo) fanOut() bool { return r.Valid && r.snap.Header.Mode.FanOut() }

// fill is the number of values queued; false if the region is not valid,
// has no counters, or its indices are impossible for its capacity. For a
// broadcast it is the backlog of the slowest live joined receiver (none:
// 0, as nobody will read what is there), at most the capacity with
// drop-oldest (older values are lost); a cursor ahead of the tail, or
// with wait-for-slowest more than the capacity behind, is impossible.
func (r *regionInfo) fill() (uint64, bool) {
	if !r.Valid || r.snap.Stats == nil {
		return 0, false
	}
	h := r.snap.Header
	if h.Mode != layout.ModeBroadcast {
		return region.Fill(*r.snap.Stats, h.Capacity)
	}
	var most uint64
	for _, ro := range r.Roles {
		if ro.Consumer == nil || !ro.Alive || !*ro.Joined {
			continue
		}
		if ro.Lag == nil || *ro.Lag > h.Capacity && h.Overflow == layout.OverflowWait {
			return 0, false
		}
		most = max(most, min(*ro.Lag, h.Capacity))
	}
	return most, true
}

// modeText is the mode as ls shows it: SPSC, MPSC, WORKQUEUE, and for a
// broadcast its overflow policy too (BROADCAST/wait-for-slowest).
func (r *regionInfo) modeText() string {
	h := r.hdr()
	if h.Mode == layout.ModeBroadcast {
		return modeName(h.Mode) + "/" + h.Overflow.String()
	}
	return modeName(h.Mode)
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

// short is the role for ls: "recv 123 alive", "send 124 dead", with many
// senders "send#3 125 alive" (by entry), and a work queue's or
// broadcast's receivers by consumer index with their positions:
// "recv#0 126 alive claim 17", "recv#1 127 alive idle", "recv#2 128
// alive cursor 40 lag 3", "recv#3 129 dead left".
func (r roleInfo) short(multi bool) string {
	what := "recv"
	switch {
	case r.Role == "unknown":
		what = fmt.Sprintf("entry#%d", r.Entry)
	case r.Consumer != nil:
		what = fmt.Sprintf("recv#%d", *r.Consumer)
	case r.Role != "sender":
	case multi:
		what = fmt.Sprintf("send#%d", r.Entry)
	default:
		what = "send"
	}
	s := fmt.Sprintf("%s %d %s", what, r.PID, r.State)
	if p := r.position(); p != "" {
		s += " " + p
	}
	return s
}

// position is a fan-out receiver's place: "claim 17" or "idle" in a work
// queue, "cursor 40 lag 3" or "left" (not joined) in a broadcast, "" for
// other roles.
func (r roleInfo) position() string {
	switch {
	case r.Consumer == nil:
		return ""
	case r.Joined != nil && !*r.Joined:
		return "left"
	case r.Joined != nil && r.Cursor == nil:
		return "cursor ?"
	case r.Joined != nil && r.Lag == nil:
		return fmt.Sprintf("cursor %d lag ?", *r.Cursor)
	case r.Joined != nil:
		return fmt.Sprintf("cursor %d lag %d", *r.Cursor, *r.Lag)
	case r.Claim != nil:
		return fmt.Sprintf("claim %d", *r.Claim)
	}
	return "idle"
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
