package region

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/ring"
	"github.com/shmchan/shmchan/shm"
)

// ReadyWait is how long an opener waits for a region's creator to finish.
const ReadyWait = time.Second

// Region is one open, mapped, validated region: its shared-memory object
// (one open file description, which carries this handle's role locks), the
// mapping, the validated header (a private copy) and, in WaitMQ mode, the
// two doorbells.
type Region struct {
	name  string
	obj   *shm.Object
	mem   []byte
	hdr   layout.Header
	bells []*mq.Queue
}

// Options tune Create and Open.
type Options struct {
	Perm              fs.FileMode // Create: the mode of the object and doorbells (0: shm.DefaultPerm)
	AllowForeignOwner bool        // Open: accept a region (and doorbells) owned by another user
}

// Create makes the region name for header h (whose Geometry succeeded):
// the object exclusively (fs.ErrExist if the name exists), sized, mapped,
// the header written and sealed, the doorbells created in WaitMQ mode. The
// ready word is not set: the caller attaches, then calls Publish. On a later
// failure the caller calls Discard.
func Create(name string, h layout.Header, o Options) (_ *Region, err error) {
	defer Recover(nil, &err, Protect()) // a peer truncating the file under us (a trapped fault: checked below)
	obj, err := shm.Create(name, int64(h.TotalSize), shm.Options{Perm: o.Perm})
	if err != nil {
		return nil, err
	}
	mem, err := obj.Map(int(h.TotalSize))
	if err != nil {
		obj.Close()
		shm.Unlink(name)
		return nil, err
	}
	h.Encode(mem)
	if Hit(obj.Hit()) {
		obj.Close()
		shm.Unlink(name)
		return nil, ring.ErrTrapped
	}
	g := &Region{name: name, obj: obj, mem: mem, hdr: h}
	if h.Wait == layout.WaitMQ {
		perm := o.Perm
		if perm == 0 {
			perm = shm.DefaultPerm
		}
		if g.bells, err = openBells(name, os.O_CREATE|os.O_EXCL, perm); err != nil {
			obj.Close()
			shm.Unlink(name)
			return nil, err
		}
	}
	return g, nil
}

// Publish stores the ready word, last: everything else of the region is
// written, and openers wait for this word.
func (g *Region) Publish() (err error) {
	defer Recover(g.Hit(), &err, Protect())
	atomic.StoreUint32(word32(g.mem, layout.OffReady), layout.ReadyValue) // SYNC POINT "ready" (release half)
	return nil
}

// Discard closes a region this process created and could not finish, and
// removes its name and doorbells.
func (g *Region) Discard() {
	g.Close()
	Unlink(g.name)
}

// Open attaches to the existing region name: it waits up to ReadyWait for
// a creator that is still writing (file shorter than header and ready word,
// or ready word not set), validates the header as FORMAT.md says, and opens
// the doorbells in WaitMQ mode.
func Open(name string, o Options) (_ *Region, err error) {
	defer Recover(nil, &err, Protect()) // a trapped fault: checked below
	obj, err := shm.Open(name, shm.Options{AllowForeignOwner: o.AllowForeignOwner})
	if err != nil {
		return nil, err
	}
	mem, h, err := mapReady(obj)
	if err != nil {
		obj.Close()
		return nil, err
	}
	g := &Region{name: name, obj: obj, mem: mem, hdr: h}
	if h.Wait == layout.WaitMQ {
		if g.bells, err = openBells(name, 0, 0); err == nil && !o.AllowForeignOwner {
			err = ownBells(g.bells)
		}
		if err != nil {
			obj.Close()
			return nil, err
		}
	}
	return g, nil
}

// mapReady maps an existing region once its creator has published it, and
// validates it.
func mapReady(obj *shm.Object) ([]byte, layout.Header, error) {
	deadline := time.Now().Add(ReadyWait)
	for {
		st, err := obj.Stat()
		if err != nil {
			return nil, layout.Header{}, err
		}
		if st.Size >= layout.OffReady+4 { // the header and the ready word
			if st.Size > layout.MaxTotalSize {
				return nil, layout.Header{}, fmt.Errorf("%w: file of %d bytes is larger than any region", layout.ErrCorrupt, st.Size)
			}
			mem, err := obj.Map(int(st.Size))
			if err != nil {
				return nil, layout.Header{}, err
			}
			// SYNC POINT "ready" (acquire half).
			for atomic.LoadUint32(word32(mem, layout.OffReady)) != layout.ReadyValue {
				if Hit(obj.Hit()) {
					obj.Unmap()
					return nil, layout.Header{}, ring.ErrTrapped
				}
				if time.Now().After(deadline) {
					obj.Unmap()
					return nil, layout.Header{}, fmt.Errorf("%w: region not ready after %v (creator died, or not a shmchan region)", layout.ErrCorrupt, ReadyWait)
				}
				time.Sleep(time.Millisecond)
			}
			h, err := layout.Validate(mem, st.Size)
			if err == nil && Hit(obj.Hit()) {
				err = ring.ErrTrapped
			}
			if err != nil {
				obj.Unmap()
				return nil, h, err
			}
			return mem, h, nil
		}
		if time.Now().After(deadline) {
			return nil, layout.Header{}, fmt.Errorf("%w: file is %d bytes, shorter than a header, after %v", layout.ErrCorrupt, st.Size, ReadyWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// Name returns the region's name as given.
func (g *Region) Name() string { return g.name }

// Header returns the validated header.
func (g *Region) Header() layout.Header { return g.hdr }

// Mem returns the mapping (g.Header().TotalSize bytes at least).
func (g *Region) Mem() []byte { return g.mem }

// Hit returns the mapping's bus-error trap word (see guard.go), nil when
// the mapping is not trapped and faults need the guard.
func (g *Region) Hit() *uint32 { return g.obj.Hit() }

// Doorbells returns the receiver's and the senders' doorbells in WaitMQ
// mode, nil otherwise.
func (g *Region) Doorbells() (recv, send ring.Doorbell) {
	if len(g.bells) != 2 {
		return nil, nil
	}
	return &mqBell{q: g.bells[0]}, &mqBell{q: g.bells[1]}
}

// Close unmaps the region and closes its descriptor, which drops every
// role lock this handle held, and closes the doorbells.
func (g *Region) Close() error {
	closeBells(g.bells)
	return g.obj.Close()
}

// Unlink removes the name and the doorbells of a region. Handles already
// open keep working; the memory is freed when the last one closes.
func Unlink(name string) error {
	if _, err := shm.Path(name); err != nil {
		return err
	}
	err := shm.Unlink(name)
	return errors.Join(err, unlinkBells(name))
}

// Role entries and their locks. Entry i (0: receiver, 1..Producers:
// senders) is held by an OFD lock on the byte at layout.RoleLockBase+i of
// this handle's descriptor; the kernel drops it when the holder dies.

// TakeRole tries to take role entry i: false (no error) if a live holder
// has it.
func (g *Region) TakeRole(i int) (bool, error) {
	return g.obj.TryLock(layout.RoleLockBase + int64(i))
}

// DropRole gives role entry i up.
func (g *Region) DropRole(i int) error {
	return g.obj.Unlock(layout.RoleLockBase + int64(i))
}

// WatchExit is shm.WatchExit, the ring's Config.WatchExit: a sleeper
// watches the other role holders' processes, and one's exit wakes it.
func WatchExit(pid int, start uint64, onExit func()) (stop func(), err error) {
	return shm.WatchExit(pid, start, onExit)
}

// Alive reports whether another open file description holds role entry i
// (this handle's own role does not count).
func (g *Region) Alive(i int) (bool, error) {
	return g.obj.LockHeld(layout.RoleLockBase + int64(i))
}

// Held reports which of role entries [0, n) are held by other open file
// descriptions.
func (g *Region) Held(n int) ([]bool, error) {
	return g.obj.HeldRange(layout.RoleLockBase, int64(n))
}

// rescueLock is the byte of the work queue's rescue lock: far past every
// role entry's lock, so tools listing held entries never see it.
const rescueLock = layout.RoleLockBase + 1<<24

// Rescue takes the work queue's rescue lock without waiting: ok false if
// another open file description holds it. A holder that dies drops it.
func (g *Region) Rescue() (unlock func(), ok bool, err error) {
	ok, err = g.obj.TryLock(rescueLock)
	if err != nil || !ok {
		return nil, false, err
	}
	return func() { g.obj.Unlock(rescueLock) }, true, nil
}

// Identity is what this process records in a role entry it takes.
func Identity() ring.Identity {
	selfOnce.Do(func() {
		self.PID = uint32(os.Getpid())
		self.Start, _ = shm.ProcStartTime(os.Getpid())
	})
	return self
}

var (
	selfOnce sync.Once
	self     ring.Identity
)

// word32 returns the 32-bit word at a layout offset inside a mapping (the
// ready word); the offset is a 4-aligned constant in a page-aligned map.
func word32(mem []byte, off int) *uint32 {
	_ = mem[off : off+4]
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

// word64 returns the 64-bit word at a layout offset inside a mapping (the
// claim-head and lagged words); the offset is an 8-aligned constant.
func word64(mem []byte, off int) *uint64 {
	_ = mem[off : off+8]
	return (*uint64)(unsafe.Pointer(&mem[off]))
}
