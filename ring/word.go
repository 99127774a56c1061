package ring

import (
	"sync/atomic"
	"unsafe"
)

// This file is the only place in the package that turns bytes of the mapping
// into typed pointers. Every offset passed here is a constant from package
// layout or a slot offset computed from validated geometry, and every word is
// naturally aligned (layout's tests assert it; the mapping is page aligned).
// The release stores that publish values are in publish_*.go.

func word32(mem []byte, off int) *uint32 {
	_ = mem[off : off+4] // bounds check without reading (a read would race with atomics)
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

func word64(mem []byte, off int) *uint64 {
	_ = mem[off : off+8]
	return (*uint64)(unsafe.Pointer(&mem[off]))
}

func atomicStore64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
func atomicStore32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
