// Package ring implements shmchan's lock-free ring protocols over the bytes
// of a region laid out by package layout: SPSC (spsc.go), MPSC (mpsc.go),
// the work queue (mpmc.go) and broadcast (broadcast.go), each a producer
// and a consumer half behind two small interfaces chosen when a role is
// taken; and the way each side waits (wait.go: spin, then futex or
// message-queue sleep).
//
// It works on any []byte: the tests run it on plain Go memory first, and
// the root package on a shared mapping.
//
// # Invariants
//
//   - The tail word (bits 0..62) counts positions claimed (MPSC) or
//     committed (SPSC); bit 63 is the closed bit. Only senders write it.
//   - The head word counts positions consumed. Only the receiver writes it.
//   - head <= tail count <= head + capacity, both only grow. Every side
//     checks this whenever it reads the other's index, and a violation is
//     ErrCorrupt: the peer is buggy or hostile.
//   - Position p lives in slot p & (capacity-1). A slot belongs to the
//     senders while p >= head and to the receiver while it is committed and
//     p < tail, never to both.
//   - SPSC: a value is committed when the tail store covering it is
//     visible. MPSC: when its slot's seq word equals uint32(p+1) (capacity
//     is at most 2^30, so a stale seq from an earlier lap never matches).
//   - Each index is read once per operation into a local, checked, then
//     used: a peer that changes it between two reads cannot make this side
//     act on two different values.
//   - Every length read from a slot is read once and checked against
//     MaxMsg before it is used to slice.
//
// # Ordering
//
// Payload bytes are written with plain stores, then published with a
// release store of the index (SPSC tail, MPSC slot seq); the receiver reads
// the index with an acquire load (sync/atomic) before it reads the payload.
// Releasing a slot is the mirror image: the receiver's reads come before its
// release store of head, and a sender reads head before writing the slot.
// On amd64 the release store is a plain MOV (see publish_amd64.go for why
// that is enough, and how the wake-up protocol gets the StoreLoad ordering
// it needs from membarrier(2) instead of a fence per message).
//
// # Waiting
//
// A blocked call spins for Config.Spin re-checking the ring, then sleeps.
// A side about to sleep increments its waiting word, re-checks, and sleeps
// on its futex word (or its message-queue doorbell in WaitMQ mode); the
// other side, after publishing, loads the waiting word and wakes only if it
// is non-zero, so a busy channel makes no system call at all. Only a
// sleeper changes its own waiting word, so no waker can cancel a later
// wake-up. Spurious wake-ups are allowed everywhere; every wake is followed
// by a re-check. See wait.go for the proof. A single sleeper (the
// receiver, or the SPSC sender) records the futex value it sleeps on, and
// only the waker whose CAS moves that value makes the system call. On amd64
// the first sleep of a call skips the membarrier that orders a sleeper's
// flag against plain-store publishers and is bounded (FirstSleep) instead;
// later sleeps pay the barrier and are unbounded but for MaxSleep.
//
// # Crashes
//
// A sender that dies before publishing leaves no trace in SPSC (its tail
// store never happened). In MPSC it leaves a claimed, uncommitted slot; the
// receiver waits on it, and after Config.StuckCheck asks Config.Alive about
// every sender whose recorded claim covers the slot. Only when none of them
// is alive does it skip the slot (Stats.Abandoned). A stopped or slow
// sender is alive and is waited for, however long.
//
// A side about to sleep watches the processes of the other role holders
// (Config.WatchExit, exits.go); one that exits wakes every sleeper of the
// handle, so a peer that publishes and dies before its wake call does not
// leave the sleeper to MaxSleep.
package ring
