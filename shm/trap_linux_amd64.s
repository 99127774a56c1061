#include "textflag.h"

// The SIGBUS handler of trap_linux.go, entered by the kernel with the C
// calling convention: DI = signal number, SI = *siginfo, DX = *ucontext,
// on the thread's signal stack, with no Go state to rely on (NOSPLIT, no
// frame, registers only; sigreturn restores every register afterwards, so
// the ones used here need no saving).
//
// A bus error (si_code BUS_ADRERR) whose address lies in a registered
// mapping has its page and the rest of that mapping replaced by private
// zero pages (mmap MAP_FIXED|MAP_PRIVATE|MAP_ANONYMOUS), the mapping's hit
// word set to 1, and the handler returns: the faulting instruction runs
// again and succeeds on the zero page. Anything else (another address, a
// signal sent by kill, an mmap that fails) jumps to the handler that was
// there before (the Go runtime's), with DI, SI and DX as they came, so it
// behaves exactly as if it had been called directly.
//
// Entry layout (trapEntry, checked by TestTrapLayout): base at 0, end at 8,
// hit (a *uint32) at 16, 24 bytes an entry. A base of 0 is a
// free entry. trapTop is how many entries the scan looks at.
TEXT ·trapHandler(SB),NOSPLIT|NOFRAME,$0
	CMPL	8(SI), $2		// si_code == BUS_ADRERR
	JNE	forward
	MOVQ	16(SI), R8		// si_addr
	LEAQ	·trapTable(SB), R9
	MOVQ	·trapTop(SB), CX
scan:
	TESTQ	CX, CX
	JEQ	forward
	MOVQ	0(R9), R10		// base (SYNC POINT "trap entry", acquire half: x86 loads are ordered)
	TESTQ	R10, R10
	JEQ	next
	CMPQ	R8, R10
	JCS	next			// addr < base
	MOVQ	8(R9), R11		// end
	CMPQ	R8, R11
	JCC	next			// addr >= end
	// Found. Keep DI, SI, DX for a forward if mmap fails.
	MOVQ	DI, R12
	MOVQ	SI, R13
	MOVQ	DX, R14
	MOVQ	16(R9), R15		// the hit word
	MOVQ	R8, DI
	ANDQ	$-4096, DI		// addr: the faulting page
	MOVQ	R11, SI
	SUBQ	DI, SI			// len: to the end of the mapping
	MOVQ	$3, DX			// PROT_READ|PROT_WRITE
	MOVQ	$0x32, R10		// MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS
	MOVQ	$-1, R8			// fd
	XORQ	R9, R9			// offset
	MOVQ	$9, AX			// SYS_mmap
	SYSCALL
	CMPQ	AX, $-4095
	JCC	failed			// -4095 <= AX: an errno
	MOVL	$1, 0(R15)
	RET
failed:
	MOVQ	R12, DI
	MOVQ	R13, SI
	MOVQ	R14, DX
	JMP	forward
next:
	ADDQ	$24, R9
	DECQ	CX
	JMP	scan
forward:
	MOVQ	·trapForward(SB), AX
	JMP	AX

// func trapHandlerPC() uintptr
TEXT ·trapHandlerPC(SB),NOSPLIT,$0-8
	LEAQ	·trapHandler(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
