package ring

import (
	"sync/atomic"
	"unsafe"
)

// This file is the only place in the package that uses unsafe: it turns
// bytes of the mapping into typed pointers, and makes 8-aligned buffers.
// Every offset passed here is a constant from package layout or a slot
// offset computed from validated geometry, and every word is naturally
// aligned (layout's tests assert it; the mapping is page aligned). The
// release stores that publish values are in publish_*.go.

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

// alignedBytes returns n bytes (rounded up to 8) of fresh memory, 8-byte
// aligned like a slot's payload, so that a copy of a value may be viewed
// in place as the value's type.
func alignedBytes(n int) []byte {
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(words)*8)
}
