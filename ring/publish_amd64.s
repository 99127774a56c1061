//go:build amd64 && !race

#include "textflag.h"

// func storeRelease64(p *uint64, v uint64)
// A plain MOV: under x86-TSO a store is never reordered with earlier loads
// or stores, so it is a release store. Being an assembly call, it is also a
// compiler barrier.
TEXT ·storeRelease64(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ BX, 0(AX)
	RET

// func storeRelease32(p *uint32, v uint32)
TEXT ·storeRelease32(SB), NOSPLIT, $0-12
	MOVQ p+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, 0(AX)
	RET

// func publishLoad(p *uint64, v uint64, w *uint32) uint32
// Stores v at p, then loads and returns the word at w: a publisher's
// release store and its look at the peer's waiting word in one call. The
// store is a plain MOV when unfenced is set (see publish_amd64.go), else an
// XCHG, a full fence.
TEXT ·publishLoad(SB), NOSPLIT, $0-28
	MOVQ p+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ w+16(FP), CX
	MOVBLZX ·unfenced(SB), DX
	TESTL DX, DX
	JEQ fenced
	MOVQ BX, 0(AX)
	MOVL 0(CX), DX
	MOVL DX, ret+24(FP)
	RET
fenced:
	XCHGQ BX, 0(AX)
	MOVL 0(CX), DX
	MOVL DX, ret+24(FP)
	RET

