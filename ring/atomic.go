package ring

import "sync/atomic"

func atomicStore64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
func atomicStore32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
