package shmchan

import "unsafe"

// putRaw stores *v as its bytes at the start of dst, and getRaw loads them
// back: a typed copy the compiler inlines, instead of a call through the
// raw codec. Callers use them only for raw codecs (T pointer-free, no bool
// fields to normalise) and check len(dst)/len(src) against the codec's
// size first; slot payloads are 8-byte aligned, which is all any Go type
// needs.
func putRaw[T any](dst []byte, v *T) {
	*(*T)(unsafe.Pointer(unsafe.SliceData(dst))) = *v
}

// storeRaw is putRaw for a value that is not addressed: v can then stay in
// registers, where &v would make the caller store it to its stack first.
func storeRaw[T any](dst []byte, v T) {
	*(*T)(unsafe.Pointer(unsafe.SliceData(dst))) = v
}

func getRaw[T any](src []byte, v *T) {
	*v = *(*T)(unsafe.Pointer(unsafe.SliceData(src)))
}
