package progress

import (
	"os"

	"golang.org/x/term"
)

// IsTerminal reports whether f is a terminal (the kernel answers the
// terminal-attributes request on its descriptor; golang.org/x/term asks).
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
