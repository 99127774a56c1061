package shm

const trapArch = true

// trapHandler is the SIGBUS handler in trap_linux_amd64.s; it is never
// called from Go.
//
//lint:ignore U1000 entered by the kernel (its address is trapHandlerPC's)
func trapHandler()

// trapHandlerPC returns trapHandler's entry address (its ABI0 symbol).
func trapHandlerPC() uintptr
