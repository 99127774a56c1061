package main

// The values the bench moves, and how every one of them is checked on
// receipt.
//
// A value of n bytes is n/8 little-endian uint64 words (every size the bench
// uses is a multiple of 8; the shmchan rows use [n/8]uint64 arrays, a raw
// type, so they travel as their bytes). For the value with sequence number
// seq:
//
//	word 0      seq
//	word n/2    ^seq                      (values of 4 words or more)
//	word last   benchTailWord(seq, words) (depends on seq and the size)
//	the rest    benchBulkWord(i), a fixed pattern
//
// The receiver checks words 0, middle and last of every value against the
// sequence number it expects next, so a lost, repeated, reordered, torn
// (head of one value, tail of another) or stale value fails. Every 256th
// value (and the first) is checked in full, bulk included, which catches a
// transport that damages the middle of a value. A failure is a
// benchVerifyError, and it ends the whole bench with a non-zero exit.

import (
	"fmt"
	"unsafe"
)

const benchCheckMul = 0x9e3779b97f4a7c15 // odd: seq -> seq*mul is a bijection

// benchFullEvery: values whose seq is a multiple of it are checked in full.
const benchFullEvery = 256

func benchTailWord(seq uint64, words int) uint64 {
	return (seq+1)*benchCheckMul ^ uint64(words)<<48
}

func benchBulkWord(i int) uint64 {
	return uint64(i)*0x0001000100010001 ^ 0xa5a5a5a5a5a5a5a5
}

func benchMidIndex(words int) int {
	if words < 4 {
		return -1
	}
	return words / 2
}

// benchFill writes the whole value seq into w.
func benchFill(w []uint64, seq uint64) {
	for i := range w {
		w[i] = benchBulkWord(i)
	}
	benchStamp(w, seq)
}

// benchStamp turns a value written by benchFill (for any seq) into value
// seq: only its three sequence-dependent words change.
func benchStamp(w []uint64, seq uint64) {
	n := len(w)
	w[0] = seq
	if m := benchMidIndex(n); m > 0 {
		w[m] = ^seq
	}
	w[n-1] = benchTailWord(seq, n)
}

// benchVerifyError is a value that arrived wrong. It is never a measurement
// problem: the transport (or the bench) is broken.
type benchVerifyError struct{ msg string }

func (e *benchVerifyError) Error() string { return "verification failed: " + e.msg }

func benchVerifyf(format string, args ...any) error {
	return &benchVerifyError{msg: fmt.Sprintf(format, args...)}
}

// benchCheck verifies that w is value seq; full also checks the bulk words.
// It is written so that the common case (the value is right) costs three
// compares and no call.
func benchCheck(w []uint64, seq uint64, full bool) error {
	n := len(w)
	if n < 2 {
		return benchVerifyf("value %d: %d words, want at least 2", seq, n)
	}
	if w[0] != seq || w[n-1] != benchTailWord(seq, n) {
		return benchCheckSlow(w, seq)
	}
	if m := benchMidIndex(n); m > 0 && w[m] != ^seq {
		return benchCheckSlow(w, seq)
	}
	if full {
		m := benchMidIndex(n)
		for i := 1; i < n-1; i++ {
			if i != m && w[i] != benchBulkWord(i) {
				return benchVerifyf("value %d (%d bytes): word %d is %#x, want %#x", seq, n*8, i, w[i], benchBulkWord(i))
			}
		}
	}
	return nil
}

func benchCheckSlow(w []uint64, seq uint64) error {
	n := len(w)
	if w[0] != seq {
		return benchVerifyf("expected value %d (%d bytes), got sequence number %d", seq, n*8, w[0])
	}
	if m := benchMidIndex(n); m > 0 && w[m] != ^seq {
		return benchVerifyf("value %d (%d bytes): middle word %d is %#x, want %#x (torn value?)", seq, n*8, m, w[m], ^seq)
	}
	return benchVerifyf("value %d (%d bytes): last word is %#x, want %#x (torn value?)", seq, n*8, w[n-1], benchTailWord(seq, n))
}

// benchWords views a value of type T (an array of uint64, or anything of a
// size that is a multiple of 8 and 8-byte aligned) as its words.
func benchWords[T any](p *T) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(p)), unsafe.Sizeof(*p)/8)
}

// benchBytes views words as bytes, for the byte-stream transports.
func benchBytes(w []uint64) []byte {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8)
}
