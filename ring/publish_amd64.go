//go:build amd64 && !race

package ring

import "github.com/shmchan/shmchan/futex"

// On amd64 a sequentially consistent atomic store is an XCHG, a full fence
// that drains the store buffer: about six times slower per message than a
// plain MOV in a streaming ring. A plain MOV is already a release store under
// x86-TSO; what it lacks is StoreLoad ordering against the publisher's later
// load of the peer's "waiting" flag (Dekker's pattern). We get that ordering
// asymmetrically: every process registers for membarrier(2)
// GLOBAL_EXPEDITED, and a sleeper, after setting its flag and before
// re-checking the index, calls futex.Barrier(), which runs a full barrier on
// every CPU running a registered process. Then either the publisher's load
// of the flag comes after that barrier (it sees 1 and wakes the sleeper), or
// its index store came before it (the sleeper's re-check sees the value).
// If registration fails, publishers fall back to fenced atomic stores.
var unfenced = futex.RegisterBarrier()

//go:noescape
func storeRelease64(p *uint64, v uint64)

//go:noescape
func storeRelease32(p *uint32, v uint32)

// publishLoad is publish64(p, v) followed by a load of *w, the waiting
// word of the side to wake (SYNC POINT "announce", waker half), in one
// call: the fast paths' whole publish. It reads unfenced itself.
//
//go:noescape
func publishLoad(p *uint64, v uint64, w *uint32) uint32

func publish64(p *uint64, v uint64) {
	if unfenced {
		storeRelease64(p, v)
		return
	}
	atomicStore64(p, v)
}

func publish32(p *uint32, v uint32) {
	if unfenced {
		storeRelease32(p, v)
		return
	}
	atomicStore32(p, v)
}

// sleeperBarrier reports how a sleeper in this process orders its flag store
// before its re-check against publishers that may use plain stores:
// barrier true means call futex.Barrier(); poll true means it cannot, and
// must not sleep unboundedly.
func sleeperBarrier() (barrier, poll bool) { return unfenced, !unfenced }
