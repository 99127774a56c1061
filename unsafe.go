package shmchan

import "unsafe"

// wordAt returns the 32-bit word at a layout offset inside a mapping. The
// offsets are layout constants, 4-byte aligned inside a page-aligned map.
func wordAt(mem []byte, off int) *uint32 {
	_ = mem[off : off+4]
	return (*uint32)(unsafe.Pointer(&mem[off]))
}
