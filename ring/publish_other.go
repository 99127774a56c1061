//go:build !amd64 || race

package ring

import (
	"runtime"
	"sync/atomic"

	"github.com/shmchan/shmchan/futex"
)

// Outside amd64 (and under the race detector, which must see the
// synchronisation) publishers use sequentially consistent atomic stores. On
// arm64 that is STLR, and the flag load that follows is LDAR, which cannot
// be reordered before an earlier STLR: Dekker's pattern holds without a
// separate fence.

func publish64(p *uint64, v uint64) { atomicStore64(p, v) }
func publish32(p *uint32, v uint32) { atomicStore32(p, v) }

// publishLoad is publish64(p, v) followed by a load of *w, the waiting
// word of the side to wake (SYNC POINT "announce", waker half).
func publishLoad(p *uint64, v uint64, w *uint32) uint32 {
	atomicStore64(p, v)
	return atomic.LoadUint32(w)
}

// A race-enabled amd64 binary may share a region with a normal build whose
// publishers use plain stores (see publish_amd64.go), so its sleepers still
// issue the barrier, or poll if they cannot.
var amd64Barrier = runtime.GOARCH == "amd64" && futex.RegisterBarrier()

func sleeperBarrier() (barrier, poll bool) {
	if runtime.GOARCH != "amd64" {
		return false, false
	}
	return amd64Barrier, !amd64Barrier
}
