package region

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/ring"
	"github.com/shmchan/shmchan/shm"
)

// ErrNotRegion: the object at a name is not a shmchan region (no magic),
// or not a regular file at all.
var ErrNotRegion = errors.New("not a shmchan region")

// ErrNotReady: the header is there but the creator has not published the
// ready word (it is still writing, or it died half-way).
var ErrNotReady = errors.New("ready word not set (the creator is still setting it up, or died doing so)")

// maxViewed bounds what a View maps: the header, the mutable words and
// every possible role entry, never the slots.
const maxViewed = layout.OffRoles + (1+layout.MaxProducers+layout.MaxConsumers)*layout.LineSize

// View is a read-only look at a region, for tools: the object opened
// O_RDONLY, whoever owns it, and its first pages mapped PROT_READ. A View
// never writes the region and never takes a role.
type View struct {
	name string // without the leading slash
	obj  *shm.Object
	mem  []byte // nil for a file too short to map
}

// Snapshot is everything a View found at one name, each word read once.
type Snapshot struct {
	Name string   // without the leading slash
	Path string   // /dev/shm/<name>
	File shm.Info // fstat of the object

	// Stored is the header as its bytes are (nil if the file is shorter
	// than a header). Header is it validated, when Err is nil: magic,
	// version, checksum, parameters, file size, ready word, all as the
	// library checks them.
	Stored *layout.Stored
	Header layout.Header
	Err    error
	Ready  bool

	// Stats are the counters (nil if the file is too short to hold them).
	Stats *ring.Stats
	// RecvWaitWord and SendWaitWord are the two waiting words as stored,
	// read with Stats (zero without): Stats reduces them to what they mean
	// (a flag, or MPSC's count of sleeping senders), tools also show the
	// word itself, where a single sleeper keeps 1 + the futex value it
	// sleeps on (layout/FORMAT.md, Waiting).
	RecvWaitWord, SendWaitWord uint32
	// ClaimHead (work queue: positions handed out to receivers) and
	// Lagged (broadcast DropOldest: values receivers missed, summed) are
	// the fan-out words as stored, read with Stats (zero without; zero in
	// the modes that do not use them).
	ClaimHead, Lagged uint64
	// Roles are the entries in use or used (a non-zero pid or a held
	// lock); beyond the header's entries, held locks are listed too.
	Roles []Role
	// AnyHeld: some role lock in the whole possible range is held, whatever
	// the header says (a safety check for removing damaged regions).
	AnyHeld bool
	// Bells are the doorbell queues of a valid WaitMQ region.
	Bells []Bell
}

// Valid reports whether the region passed every check.
func (s *Snapshot) Valid() bool { return s.Err == nil }

// Role is one role entry: what its holder recorded, and whether its lock
// is held by a live process.
type Role struct {
	Index int // 0: receiver, 1..Producers: senders, then the consumers (Header.ConsumerEntry)
	ring.Entry
	Alive bool
}

// Sleeping reports whether the entry's holder counted itself asleep.
func (r Role) Sleeping() bool { return r.Flags&layout.RoleSleeping != 0 }

// Joined reports whether a broadcast consumer entry is joined: its cursor
// gates WaitForSlowest senders (layout.RoleJoined).
func (r Role) Joined() bool { return Joined(r.Entry) }

// Claim is the position a work-queue consumer entry holds (claimed, not
// yet consumed); false if it holds none.
func (r Role) Claim() (uint64, bool) { return WorkClaim(r.Entry) }

// Joined reports whether broadcast consumer entry e is joined.
func Joined(e ring.Entry) bool { return e.Flags&layout.RoleJoined != 0 }

// WorkClaim is the position work-queue consumer entry e holds: a claim is
// the one position [claim_lo, claim_lo+1); claim_lo == claim_hi is none.
// Anything else is no claim either (a peer's garbage, shown as none).
func WorkClaim(e ring.Entry) (uint64, bool) {
	if e.ClaimHi != e.ClaimLo+1 {
		return 0, false
	}
	return e.ClaimLo, true
}

// Lag is how many values a broadcast receiver at cursor has still to read
// (or, past the capacity, has lost) when the tail count is tail; false if
// the cursor is ahead of the tail, which no receiver can be.
func Lag(cursor, tail uint64) (uint64, bool) {
	if cursor > tail {
		return 0, false
	}
	return tail - cursor, true
}

// Bell is one doorbell queue.
type Bell struct {
	Name    string // with its leading slash
	Exists  bool
	Pending int64
	MaxMsg  int64
	Err     error // it exists but could not be looked at
}

// OpenView opens name for reading. A missing name is fs.ErrNotExist; a
// symbolic link, directory, FIFO or device is ErrNotRegion (wrapping
// shm.ErrNotRegular).
func OpenView(name string) (*View, error) {
	obj, err := shm.Open(name, shm.Options{ReadOnly: true, AllowForeignOwner: true})
	if err != nil {
		if errors.Is(err, shm.ErrNotRegular) {
			return nil, fmt.Errorf("%w: %w", ErrNotRegion, err)
		}
		return nil, err
	}
	v := &View{name: obj.Name(), obj: obj}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, err
	}
	if n := int(min(st.Size, int64(maxViewed))); n > 0 {
		if v.mem, err = obj.Map(n); err != nil {
			obj.Close()
			return nil, err
		}
	}
	return v, nil
}

// Inspect opens a View of name, takes one Snapshot and closes it.
func Inspect(name string) (Snapshot, error) {
	v, err := OpenView(name)
	if err != nil {
		return Snapshot{}, err
	}
	defer v.Close()
	return v.Snapshot()
}

// Close unmaps and closes the View.
func (v *View) Close() error { return v.obj.Close() }

// Name returns the region's name without its leading slash.
func (v *View) Name() string { return v.name }

// Stats reads the counters alone (for watching a region): an error
// wrapping layout.ErrCorrupt if the file is too short to hold them, or was
// truncated under the mapping (the memory fault is caught). singleSender
// says the senders' waiting word is a flag (SPSC), not a count.
func (v *View) Stats(singleSender bool) (st ring.Stats, err error) {
	defer Recover(v.obj.Hit(), &err, Protect())
	st, ok := ring.ReadStats(v.mem, singleSender)
	if !ok {
		return st, fmt.Errorf("%w: file too short for the counters", layout.ErrCorrupt)
	}
	return st, nil
}

// maxEntries is the number of role entries any header can have.
const maxEntries = 1 + layout.MaxProducers + layout.MaxConsumers

// Held reports which of role entries [0, n) are held by a live process
// (n is at most 1+layout.MaxProducers+layout.MaxConsumers, the entries of
// any header; a View holds no locks itself).
func (v *View) Held(n int) ([]bool, error) {
	if n < 0 || n > maxEntries {
		return nil, fmt.Errorf("region: %d role entries: %w", n, fs.ErrInvalid)
	}
	return v.obj.HeldRange(layout.RoleLockBase, int64(n))
}

// Entry reads role entry i alone (for watching a region), under the fault
// guard: an error wrapping layout.ErrCorrupt if the mapping does not hold
// it or the file was truncated under it.
func (v *View) Entry(i int) (e ring.Entry, err error) {
	if i < 0 || i >= maxEntries {
		return e, fmt.Errorf("region: role entry %d: %w", i, fs.ErrInvalid)
	}
	defer Recover(v.obj.Hit(), &err, Protect())
	e, ok := ring.ReadEntry(v.mem, i)
	if !ok {
		return e, fmt.Errorf("%w: file too short for role entry %d", layout.ErrCorrupt, i)
	}
	return e, nil
}

// FanOut reads the work queue's claim head and the broadcast lagged count
// alone (for watching), as Stats reads the counters.
func (v *View) FanOut() (claimHead, lagged uint64, err error) {
	defer Recover(v.obj.Hit(), &err, Protect())
	if len(v.mem) < layout.OffLagged+8 {
		return 0, 0, fmt.Errorf("%w: file too short for the counters", layout.ErrCorrupt)
	}
	return atomic.LoadUint64(word64(v.mem, layout.OffClaimHead)), atomic.LoadUint64(word64(v.mem, layout.OffLagged)), nil
}

// Truncated reports whether the file is now shorter than the part of it
// the View mapped (reading that part would fault), with the file's size.
func (v *View) Truncated() (size int64, cut bool, err error) {
	st, err := v.obj.Stat()
	if err != nil {
		return 0, false, err
	}
	return st.Size, st.Size < int64(len(v.mem)), nil
}

// Linked reports whether the region's name still refers to the viewed
// file: false once it was removed, or removed and made again.
func (v *View) Linked() (bool, error) { return v.obj.Linked() }

// Fill returns the values queued (tail - head) in counters st of a region
// with the given capacity, and false if the indices are impossible: head
// ahead of tail, or more queued than fits.
func Fill(st ring.Stats, capacity uint64) (uint64, bool) {
	if st.Received > st.Sent || st.Sent-st.Received > capacity {
		return 0, false
	}
	return st.Sent - st.Received, true
}

// Snapshot reads everything about the region now. It returns ErrNotRegion
// for a file without the magic; what is wrong with a region that could be
// read is in Snapshot.Err. A memory fault (the file truncated under the
// mapping) becomes Snapshot.Err too.
func (v *View) Snapshot() (s Snapshot, err error) {
	info, err := v.obj.Stat()
	if err != nil {
		return s, err
	}
	s = Snapshot{Name: v.name, Path: v.obj.Path(), File: info}
	var fault error
	defer func() {
		if fault != nil && err == nil {
			s.Err = fault
		}
	}()
	defer Recover(v.obj.Hit(), &fault, Protect())
	mem := v.mem
	if len(mem) < len(layout.Magic) || string(mem[:len(layout.Magic)]) != layout.Magic {
		if Hit(v.obj.Hit()) { // zero pages in place of the magic: Recover reports the fault
			return s, nil
		}
		return Snapshot{}, ErrNotRegion
	}
	if len(mem) < layout.HeaderSize {
		s.Err = fmt.Errorf("%w: file is %d bytes, shorter than the %d-byte header", layout.ErrCorrupt, info.Size, layout.HeaderSize)
	} else {
		var b [layout.HeaderSize]byte
		copy(b[:], mem) // one private copy, checked and shown
		d := layout.Decode(&b)
		s.Stored = &d
		h, perr := layout.Peek(b[:])
		switch {
		case perr != nil:
			s.Err = perr
		case uint64(info.Size) < h.TotalSize:
			s.Err = fmt.Errorf("%w: file is %d bytes, header claims %d", layout.ErrCorrupt, info.Size, h.TotalSize)
		default:
			s.Header = h
		}
	}
	if len(mem) >= layout.OffReady+4 && atomic.LoadUint32(word32(mem, layout.OffReady)) == layout.ReadyValue {
		s.Ready = true
	}
	if s.Err == nil && !s.Ready {
		s.Err = fmt.Errorf("%w: %w", layout.ErrCorrupt, ErrNotReady)
	}
	if st, ok := ring.ReadStats(mem, s.Err == nil && s.Header.Mode == layout.ModeSPSC); ok {
		s.Stats = &st
		s.RecvWaitWord = atomic.LoadUint32(word32(mem, layout.OffRecvWaiting))
		s.SendWaitWord = atomic.LoadUint32(word32(mem, layout.OffSendWaiters))
		s.ClaimHead = atomic.LoadUint64(word64(mem, layout.OffClaimHead))
		s.Lagged = atomic.LoadUint64(word64(mem, layout.OffLagged))
	}

	// Role entries: the header's count if it validated; otherwise as many
	// as the stored count claims and the file holds (a damaged header is
	// still worth showing the pids of).
	n := 1
	switch {
	case s.Err == nil:
		n = s.Header.Entries()
	case s.Stored != nil:
		n += int(min(s.Stored.Producers, layout.MaxProducers)) + int(min(s.Stored.Consumers, layout.MaxConsumers))
	}
	held, lerr := v.obj.HeldRange(layout.RoleLockBase, maxEntries)
	if lerr != nil && s.Err == nil {
		s.Err = lerr
	}
	for i := range held {
		alive := held[i]
		s.AnyHeld = s.AnyHeld || alive
		e, ok := ring.ReadEntry(mem, i)
		if i < n && ok && (e.PID != 0 || alive) {
			s.Roles = append(s.Roles, Role{Index: i, Entry: e, Alive: alive})
		} else if i >= n && alive {
			s.Roles = append(s.Roles, Role{Index: i, Alive: true})
		}
	}
	if s.Err == nil && s.Header.Wait == layout.WaitMQ {
		s.Bells = readBells(v.name)
	}
	return s, nil
}

func readBells(name string) []Bell {
	var out []Bell
	for _, n := range BellNames(name) {
		b := Bell{Name: "/" + n}
		q, err := mq.Open(n, os.O_RDONLY, 0, nil)
		switch {
		case err == nil:
			b.Exists = true
			if a, err := q.Attr(); err == nil {
				b.Pending, b.MaxMsg = a.CurMsgs, a.MaxMsg
			} else {
				b.Err = err
			}
			q.Close()
		case errors.Is(err, fs.ErrNotExist):
		default:
			b.Exists = true // it is there, but we may not look at it
			b.Err = err
		}
		out = append(out, b)
	}
	return out
}
