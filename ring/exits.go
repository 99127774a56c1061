package ring

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/shmchan/shmchan/layout"
)

// Exit watches: the last defence of "a wake-up never waits for a timeout
// because another process died". The wake protocol (wait.go) hands every
// wake-up to a live process: a waker that wins the claim and stops, or dies,
// is covered by the next waker and by every new role holder, which wake the
// other side when they join. What no live process covers is a peer that
// publishes (or releases) and then dies before its wake call, with no other
// peer to come after it: the sleeper would wait for the end of its bounded
// sleep (MaxSleep). So a side about to sleep watches the other holders of
// the region's roles (Config.WatchExit: a pidfd in the runtime's poller),
// and when one exits, every sleeper of this handle is woken to look again.
//
// The entries' pid and start time are peer-written and only a hint: a wrong
// one is not watched (WatchExit checks the start time against /proc) or
// wakes the sleepers for nothing, which spurious-wake-tolerant sleepers
// allow. Liveness itself is still decided by the role locks.

// exitWatches holds one watch per role entry, by the pid and start time it
// was made for.
type exitWatches struct {
	watch  func(pid int, start uint64, onExit func()) (func(), error)
	mu     sync.Mutex
	closed bool
	by     []exitWatch // by role entry; pid 0: none
}

type exitWatch struct {
	pid   uint32
	start uint64
	stop  func() // nil: WatchExit refused; not retried for this pid and start
}

var selfPID = uint32(os.Getpid())

// watchPeers makes sure every role entry held by another process is
// watched. It runs once per sleep, on the slow path; a watch is made once
// per holder.
func (r *Ring) watchPeers() {
	w := &r.exits
	if w.watch == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if w.by == nil {
		w.by = make([]exitWatch, 1+int(r.hdr.Producers)+int(r.hdr.Consumers))
	}
	for i := range w.by {
		off := layout.RoleOffset(i)
		pid := atomic.LoadUint32(word32(r.mem, off+layout.RolePID))
		start := atomic.LoadUint64(word64(r.mem, off+layout.RoleStart))
		old := &w.by[i]
		if old.pid == pid && old.start == start {
			continue // watched already, refused already, or empty as before
		}
		if old.stop != nil {
			old.stop()
		}
		*old = exitWatch{pid: pid, start: start}
		if pid == 0 || pid == selfPID || pid > 1<<22 { // pid_max is at most 2^22
			continue
		}
		if stop, err := w.watch(int(pid), start, r.peerExited); err == nil {
			old.stop = stop
		}
	}
}

// peerExited wakes every sleeper of both sides: each looks again.
func (r *Ring) peerExited() {
	protected(func() {
		r.wakeAll(&r.recv, false)
		r.wakeAll(&r.send, false)
	})
}

// close ends every watch; after it no onExit runs (Shutdown calls it before
// the handle unmaps), and watchPeers makes no new ones.
func (w *exitWatches) close() {
	w.mu.Lock()
	w.closed = true
	by := w.by
	w.by = nil
	w.mu.Unlock()
	for _, e := range by {
		if e.stop != nil {
			e.stop()
		}
	}
}
