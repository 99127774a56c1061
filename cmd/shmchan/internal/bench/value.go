package bench

// The values the bench moves, and how every one of them is checked on
// receipt.
//
// A value of n bytes is n/8 little-endian uint64 words (every size the bench
// uses is a multiple of 8; the shmchan rows use [n/8]uint64 arrays, a raw
// type, so they travel as their bytes; at 16 bytes a struct of two uint64,
// see pair). For the value with sequence number seq:
//
//	word 0      seq
//	word n/2    ^seq                      (values of 4 words or more)
//	word last   tailWord(seq, words) (depends on seq and the size)
//	the rest    bulkWord(i), a fixed pattern
//
// The receiver checks words 0, middle and last of every value against the
// sequence number it expects next, so a lost, repeated, reordered, torn
// (head of one value, tail of another) or stale value fails. Every 256th
// value (and the first) is checked in full, bulk included, which catches a
// transport that damages the middle of a value. A failure is a
// verifyError, and it ends the whole bench with a non-zero exit.

import (
	"fmt"
	"unsafe"
)

const checkMul = 0x9e3779b97f4a7c15 // odd: seq -> seq*mul is a bijection

// fullEvery: values whose seq is a multiple of it are checked in full.
const fullEvery = 256

func tailWord(seq uint64, words int) uint64 {
	return (seq+1)*checkMul ^ uint64(words)<<48
}

func bulkWord(i int) uint64 {
	return uint64(i)*0x0001000100010001 ^ 0xa5a5a5a5a5a5a5a5
}

func midIndex(words int) int {
	if words < 4 {
		return -1
	}
	return words / 2
}

// fill writes the whole value seq into w.
func fill(w []uint64, seq uint64) {
	for i := range w {
		w[i] = bulkWord(i)
	}
	stamp(w, seq)
}

// stamp turns a value written by fill (for any seq) into value
// seq: only its three sequence-dependent words change.
func stamp(w []uint64, seq uint64) {
	n := len(w)
	w[0] = seq
	if m := midIndex(n); m > 0 {
		w[m] = ^seq
	}
	w[n-1] = tailWord(seq, n)
}

// verifyError is a value that arrived wrong. It is never a measurement
// problem: the transport (or the bench) is broken.
type verifyError struct{ msg string }

func (e *verifyError) Error() string { return "verification failed: " + e.msg }

func verifyf(format string, args ...any) error {
	return &verifyError{msg: fmt.Sprintf(format, args...)}
}

// check verifies that w is value seq; full also checks the bulk words.
// It is written so that the common case (the value is right) costs three
// compares and no call.
func check(w []uint64, seq uint64, full bool) error {
	n := len(w)
	if n < 2 {
		return verifyf("value %d: %d words, want at least 2", seq, n)
	}
	if w[0] != seq || w[n-1] != tailWord(seq, n) {
		return checkSlow(w, seq)
	}
	if m := midIndex(n); m > 0 && w[m] != ^seq {
		return checkSlow(w, seq)
	}
	if full {
		m := midIndex(n)
		for i := 1; i < n-1; i++ {
			if i != m && w[i] != bulkWord(i) {
				return verifyf("value %d (%d bytes): word %d is %#x, want %#x", seq, n*8, i, w[i], bulkWord(i))
			}
		}
	}
	return nil
}

func checkSlow(w []uint64, seq uint64) error {
	n := len(w)
	if w[0] != seq {
		return verifyf("expected value %d (%d bytes), got sequence number %d", seq, n*8, w[0])
	}
	if m := midIndex(n); m > 0 && w[m] != ^seq {
		return verifyf("value %d (%d bytes): middle word %d is %#x, want %#x (torn value?)", seq, n*8, m, w[m], ^seq)
	}
	return verifyf("value %d (%d bytes): last word is %#x, want %#x (torn value?)", seq, n*8, w[n-1], tailWord(seq, n))
}

// asWords views a value of type T (an array of uint64, or anything of a
// size that is a multiple of 8 and 8-byte aligned) as its words.
func asWords[T any](p *T) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(p)), unsafe.Sizeof(*p)/8)
}

// asBytes views words as bytes, for the byte-stream transports.
func asBytes(w []uint64) []byte {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8)
}
