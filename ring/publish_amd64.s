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
