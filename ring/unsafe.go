package ring

import "unsafe"

// This file is the only place in the package that turns bytes of the mapping
// into typed pointers. Every offset passed here is a constant from package
// layout or a slot offset computed from validated geometry, and every word is
// naturally aligned (layout's tests assert it; the mapping is page aligned).

func word32(mem []byte, off int) *uint32 {
	_ = mem[off : off+4] // bounds check without reading (a read would race with atomics)
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

func word64(mem []byte, off int) *uint64 {
	_ = mem[off : off+8]
	return (*uint64)(unsafe.Pointer(&mem[off]))
}
