package shm

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Dir is the directory where POSIX shared-memory objects live on Linux.
const Dir = "/dev/shm"

// maxNameLen is NAME_MAX, the longest file name a Linux directory entry
// (and so shm_open) accepts.
const maxNameLen = 255

// Path returns the file path of the shared-memory object called name:
// "/orders" and "orders" both give "/dev/shm/orders". Names that are not
// valid (see the package documentation) give an error matching
// ErrInvalidName.
func Path(name string) (string, error) {
	return PathIn(Dir, name)
}

// PathIn is Path for objects kept in dir instead of Dir; an empty dir means
// Dir. It is meant for tests that use a private tmpfs.
func PathIn(dir, name string) (string, error) {
	base, err := cleanName(name)
	if err != nil {
		return "", err
	}
	if dir == "" {
		dir = Dir
	}
	return filepath.Join(dir, base), nil
}

// cleanName validates name and returns it without its optional leading
// slash.
func cleanName(name string) (string, error) {
	base := strings.TrimPrefix(name, "/")
	var why string
	switch {
	case base == "":
		why = "empty"
	case base == "." || base == "..":
		why = "a dot name"
	case strings.ContainsRune(base, '/'):
		why = "contains a slash after the first byte"
	case strings.IndexByte(base, 0) >= 0:
		why = "contains a NUL byte"
	case len(base) > maxNameLen:
		why = fmt.Sprintf("%d bytes long, more than %d", len(base), maxNameLen)
	default:
		return base, nil
	}
	return "", fmt.Errorf("shm: name %q: %w: %s", name, ErrInvalidName, why)
}
