package ring

import "unsafe"

func unsafeBytes(buf []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)
}
