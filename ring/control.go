package ring

import (
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// Counters and role entries: what tools read and what a role holder
// records about itself. None of it is used to index or size anything.

// Stats are the region's counters. They are read without a lock, each word
// atomically, so they are a consistent picture only of a quiet channel.
type Stats struct {
	Sent          uint64 // values claimed (MPSC) or committed (SPSC) by senders
	Received      uint64 // values consumed (including abandoned slots)
	Abandoned     uint64 // MPSC slots skipped because their writer died
	Closed        bool
	SenderWakes   uint64 // wake-ups senders issued to a sleeping receiver
	ReceiverWakes uint64 // wake-ups the receiver issued to sleeping senders
	RecvSleeps    uint64 // times the receiver slept
	SendSleeps    uint64 // times a sender slept
	RecvWaiting   uint32 // 1 while the receiver may be asleep
	SendWaiters   uint32 // senders that may be asleep
}

// Stats returns the counters.
func (r *Ring) Stats() Stats {
	st, _ := ReadStats(r.mem, r.send.oneSleeper)
	return st
}

// ReadStats reads the counters from any mapping that holds the mutable
// words (tools use it on damaged regions too); false if mem is too short
// to hold the last of them (the senders' sleep count). singleSender says
// the senders' waiting word is a flag (SPSC), not a count.
func ReadStats(mem []byte, singleSender bool) (Stats, bool) {
	if len(mem) < layout.OffSendSleeps+8 {
		return Stats{}, false
	}
	t := atomic.LoadUint64(word64(mem, layout.OffTail))
	st := Stats{
		Sent:          t &^ layout.ClosedBit,
		Closed:        t&layout.ClosedBit != 0,
		Received:      atomic.LoadUint64(word64(mem, layout.OffHead)),
		Abandoned:     atomic.LoadUint64(word64(mem, layout.OffAbandoned)),
		SenderWakes:   atomic.LoadUint64(word64(mem, layout.OffSenderWakes)),
		ReceiverWakes: atomic.LoadUint64(word64(mem, layout.OffReceiverWakes)),
		RecvSleeps:    atomic.LoadUint64(word64(mem, layout.OffRecvSleeps)),
		SendSleeps:    atomic.LoadUint64(word64(mem, layout.OffSendSleeps)),
		RecvWaiting:   min(atomic.LoadUint32(word32(mem, layout.OffRecvWaiting)), 1),
		SendWaiters:   atomic.LoadUint32(word32(mem, layout.OffSendWaiters)),
	}
	if singleSender {
		st.SendWaiters = min(st.SendWaiters, 1)
	}
	return st, true
}

// Identity is what a role entry records about its holder, for tools and for
// people: liveness itself is decided by the role lock the caller holds.
type Identity struct {
	PID   uint32
	Start uint64 // process start time, clock ticks since boot
}

// Entry is one role entry as its words hold it now (a snapshot for tools;
// every field is informational and untrusted).
type Entry struct {
	PID       uint32
	Flags     uint32
	Start     uint64
	Since     int64
	ClaimLo   uint64
	ClaimHi   uint64
	Sent      uint64
	Takeovers uint64
}

// Entry reads role entry i (0: receiver, 1..Producers: senders).
func (r *Ring) Entry(i int) Entry {
	e, _ := ReadEntry(r.mem, i)
	return e
}

// ReadEntry reads role entry i from any mapping; false if mem is too short
// to hold it.
func ReadEntry(mem []byte, i int) (Entry, bool) {
	off := layout.RoleOffset(i)
	if i < 0 || off+layout.LineSize > len(mem) {
		return Entry{}, false
	}
	return Entry{
		PID:       atomic.LoadUint32(word32(mem, off+layout.RolePID)),
		Flags:     atomic.LoadUint32(word32(mem, off+layout.RoleFlags)),
		Start:     atomic.LoadUint64(word64(mem, off+layout.RoleStart)),
		Since:     int64(atomic.LoadUint64(word64(mem, off+layout.RoleSince))),
		ClaimLo:   atomic.LoadUint64(word64(mem, off+layout.RoleClaimLo)),
		ClaimHi:   atomic.LoadUint64(word64(mem, off+layout.RoleClaimHi)),
		Sent:      atomic.LoadUint64(word64(mem, off+layout.RoleSent)),
		Takeovers: atomic.LoadUint64(word64(mem, off+layout.RoleTakeovers)),
	}, true
}

// Entries returns the number of role entries (1 + Producers).
func (r *Ring) Entries() int { return 1 + int(r.hdr.Producers) }

// stampEntry records the new holder of role entry i (informational; the
// role lock is what counts), counting a takeover if the entry had a holder.
func (r *Ring) stampEntry(i int, id Identity) {
	off := layout.RoleOffset(i)
	pidWord := word32(r.mem, off+layout.RolePID)
	if atomic.LoadUint32(pidWord) != 0 {
		atomic.AddUint64(word64(r.mem, off+layout.RoleTakeovers), 1)
	}
	atomic.StoreUint32(pidWord, id.PID)
	atomic.StoreUint64(word64(r.mem, off+layout.RoleStart), id.Start)
	atomic.StoreUint64(word64(r.mem, off+layout.RoleSince), uint64(time.Now().UnixNano()))
}

// clearEntry marks role entry i free (informational: the lock is what
// counts).
func (r *Ring) clearEntry(i int) {
	atomic.StoreUint32(word32(r.mem, layout.RoleOffset(i)+layout.RolePID), 0)
}
