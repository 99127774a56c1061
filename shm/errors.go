package shm

import (
	"errors"
	"fmt"
	"io/fs"
)

// Errors returned by this package are wrapped with context (the path, the
// step that failed); match them with errors.Is. Failures of plain system
// calls wrap the syscall.Errno, so errors.Is(err, fs.ErrExist),
// errors.Is(err, fs.ErrNotExist) and errors.Is(err, fs.ErrPermission) work
// too.
var (
	// ErrInvalidName reports a name that is not a valid shared-memory object
	// name (see the package documentation). It matches fs.ErrInvalid.
	ErrInvalidName = fmt.Errorf("invalid shared-memory object name: %w", fs.ErrInvalid)

	// ErrNotRegular reports that the name refers to something other than a
	// regular file: a symbolic link, directory, FIFO, socket or device.
	ErrNotRegular = errors.New("not a regular file")

	// ErrForeignOwner reports that the object is owned by a uid other than
	// the caller's effective uid and the caller did not allow that.
	ErrForeignOwner = errors.New("owned by another user")

	// ErrTooSmall reports that the file is shorter than the mapping asked
	// for.
	ErrTooSmall = errors.New("file smaller than the requested mapping")

	// ErrNoSpace reports that the shared-memory filesystem has no room for
	// the object (ENOSPC, EFBIG or EDQUOT while sizing or reserving it). The
	// error also wraps the errno.
	ErrNoSpace = errors.New("no space for the shared-memory object")

	// ErrAlreadyMapped reports a second Map on an Object that is mapped.
	ErrAlreadyMapped = errors.New("object already mapped")
)
