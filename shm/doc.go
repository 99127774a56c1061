// Package shm is the operating-system side of a shmchan region: the POSIX
// shared-memory object that shm_open(3) would name, a regular file in
// /dev/shm (a tmpfs).
//
// # Names
//
// "/orders" and "orders" are the same object, /dev/shm/orders, so a C program
// calling shm_open("/orders", ...) sees the same file. After removing at most
// one leading slash, a name must be non-empty, must not be "." or "..", must
// contain no slash and no NUL byte, and must be at most 255 bytes long;
// anything else is [ErrInvalidName]. A name therefore never escapes its
// directory.
//
// [Options.Dir] replaces /dev/shm for [Create] and [Open]; [PathIn] and
// [UnlinkIn] take the same directory. It exists so that tests can use a small
// private tmpfs (for example to provoke [ErrNoSpace]); production code leaves
// it empty.
//
// # Creating and opening
//
// [Create] opens the path with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, so it never
// follows a symbolic link planted at the name and fails with an error matching
// [fs.ErrExist] if anything is there. The permission bits are set with fchmod
// after creation, so the process umask does not change them (default 0600).
// The size is set with ftruncate and then reserved with fallocate: on tmpfs
// this allocates the pages now, so a full /dev/shm is reported by Create as
// [ErrNoSpace] instead of killing a later writer with SIGBUS. If any step after
// the file was created fails, Create removes the file again (only if the name
// still refers to the file it created) and closes it.
//
// [Open] opens an existing object with O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC|O_NOCTTY
// and then checks with fstat that it is a regular file ([ErrNotRegular]
// otherwise: a symbolic link, directory, FIFO, socket or device at the name)
// owned by the effective uid of the caller ([ErrForeignOwner] otherwise,
// unless [Options.AllowForeignOwner]). O_NONBLOCK makes a FIFO planted at the
// name fail fast instead of blocking; it has no effect on the regular file
// that is kept open. An absent object is an error matching [fs.ErrNotExist].
//
// # Objects, mappings and lifetime
//
// An [Object] owns one open file description, kept open until [Object.Close].
// It has no finalizer: an Object that is dropped without Close leaks its file
// descriptor and keeps its role locks (see below) until the process exits.
// [Object.Map] maps a prefix of the file shared and read-write after checking
// with fstat that the file is at least that long ([ErrTooSmall] otherwise);
// one mapping per Object at a time. If another process later shrinks the file,
// touching the mapping past the new end raises SIGBUS. On amd64 the mapping is
// trapped (trap_linux.go): a SIGBUS handler installed in front of the Go
// runtime's replaces the lost pages of a registered mapping with private zero
// pages, sets the mapping's hit word ([Object.Hit]) and lets the access go
// on; every other SIGBUS reaches the runtime as before. The owner must read
// the hit word after its accesses and treat a set word as a corrupt region.
// Where there is no trap (Hit nil), the runtime reports the fault as a fatal
// "unexpected fault address" unless runtime/debug.SetPanicOnFault is in
// effect; callers that do not trust their peers should keep that in mind.
//
// [Object.Stat] also reports the blocks the file has allocated
// ([Info].Blocks), which tells a sparse object (whose pages a first write
// would take from the filesystem's free space) from a reserved one.
// [FSStat] and [CheckWritable] report on the directory itself: the
// filesystem's type, size, free space and device, and whether this process
// may create objects there. They are for tools that check a machine.
//
// Closing an Object unmaps its mapping and closes the descriptor; it does not
// remove the name. [Unlink] does. A mapping stays valid after Unlink.
//
// # Role locks
//
// [Object.TryLock], [Object.Unlock] and [Object.LockHeld] are Linux
// open-file-description locks (fcntl F_OFD_SETLK / F_OFD_GETLK): advisory,
// exclusive, one byte each, at offsets the caller chooses (they may lie far
// beyond the end of the file and do not affect I/O). They belong to the open
// file description, not to the process, which gives the two properties role
// claims need:
//
//   - Two Objects, even in the same process, are different descriptions, so
//     their locks conflict. (Classic POSIX fcntl locks would not: they belong
//     to the process, and closing any descriptor of the file would silently
//     drop them all.)
//   - The kernel releases the locks when the last descriptor of the
//     description is closed, which includes the death of the process for any
//     reason, SIGKILL included. Nothing is left to clean up.
//
// The descriptor is opened O_CLOEXEC, so an exec'd child does not inherit it
// and cannot keep a lock alive. If code duplicates [Object.Fd] (dup, or by
// passing it to a child), the duplicate shares the description and keeps the
// locks held after Close.
//
// # Processes
//
// [ProcStartTime] tells a process from a later one with the same pid, and
// [WatchExit] calls a function when a given process exits (a pidfd waited on
// through the runtime's poller): the ring uses it to wake its sleepers when a
// peer dies, where the role locks alone would only be looked at later.
package shm
