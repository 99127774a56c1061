package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPerm is the permission Create gives an object when Options.Perm is
// zero.
const DefaultPerm fs.FileMode = 0o600

// Options tunes Create and Open. The zero value is the usual choice.
type Options struct {
	// Perm is the permission of a new object (Create only). Zero means
	// DefaultPerm (0600). Only the nine permission bits are allowed. It is
	// set with fchmod after creation, so the umask does not change it.
	Perm fs.FileMode

	// AllowForeignOwner lets Open accept an object whose owner is not the
	// caller's effective uid (Open only).
	AllowForeignOwner bool

	// ReadOnly opens the object for reading only (Open only): Map then
	// maps it PROT_READ, and the object can be inspected without write
	// permission. Role locks cannot be taken through it; LockHeld and
	// HeldRange work.
	ReadOnly bool

	// Dir replaces Dir ("/dev/shm") as the directory holding the object.
	// Empty means Dir. For tests on a private tmpfs.
	Dir string
}

// Info is what Object.Stat reports about the file.
type Info struct {
	Size    int64
	Mode    fs.FileMode // permission bits only
	UID     uint32
	GID     uint32
	ModTime time.Time
	// Blocks is what the filesystem has allocated to the file, in 512-byte
	// units (st_blocks): less than Size/512 for pages never touched or
	// reserved. Create reserves every page, so a region made by the
	// library has them all.
	Blocks int64
}

// Object is one open shared-memory object: one open file description, kept
// open until Close, and at most one mapping of it. Its methods are safe for
// concurrent use. An Object has no finalizer; always Close it.
type Object struct {
	name string // without the leading slash
	path string

	mu       sync.Mutex
	fd       int     // -1 once closed
	mem      []byte  // the mapping, nil when unmapped
	hit      *uint32 // the mapping's bus-error trap word; nil: not trapped
	readOnly bool
}

// Create creates the object called name with the given size and opens it.
// It fails with an error matching fs.ErrExist if anything already exists at
// the name (a symbolic link there is not followed), and with ErrNoSpace if
// the filesystem cannot hold size bytes. On any failure after the file was
// created, the file is removed and closed again.
func Create(name string, size int64, o Options) (*Object, error) {
	base, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	path, _ := PathIn(o.Dir, base)
	if size < 0 {
		return nil, fmt.Errorf("shm: create %s: negative size %d: %w", path, size, fs.ErrInvalid)
	}
	perm := o.Perm
	if perm == 0 {
		perm = DefaultPerm
	}
	if perm&^fs.ModePerm != 0 {
		return nil, fmt.Errorf("shm: create %s: mode %v has bits other than permissions: %w", path, perm, fs.ErrInvalid)
	}

	// Mode 0 at creation: nobody else can open the file before fchmod
	// below gives it its real permission.
	fd, err := openFile(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	obj := &Object{name: base, path: path, fd: fd}
	if err := obj.setup(size, perm); err != nil {
		if cerr := obj.discard(); cerr != nil {
			err = fmt.Errorf("%w (and while removing it again: %v)", err, cerr)
		}
		return nil, err
	}
	return obj, nil
}

// setup gives a freshly created object its permission and size.
func (o *Object) setup(size int64, perm fs.FileMode) error {
	if err := ignoringEINTR(func() error { return unix.Fchmod(o.fd, uint32(perm)) }); err != nil {
		return fmt.Errorf("shm: create %s: fchmod %#o: %w", o.path, uint32(perm), err)
	}
	if size == 0 {
		return nil
	}
	if err := ignoringEINTR(func() error { return unix.Ftruncate(o.fd, size) }); err != nil {
		return o.sizeError("ftruncate", size, err)
	}
	if err := reserve(o.fd, size); err != nil {
		return o.sizeError("fallocate", size, err)
	}
	return nil
}

// reserveChunk is how much reserve asks fallocate for at a time.
const reserveChunk = 16 << 20

// reserve allocates the first size bytes of the file with fallocate. On
// tmpfs that allocates the pages now (they count against the filesystem's
// size limit), so a full /dev/shm fails here rather than with SIGBUS at the
// first write through a mapping.
//
// tmpfs gives up with EINTR when a signal is pending and then frees what
// that call had allocated; a retry starts over. One huge call could
// therefore be interrupted forever (a CPU-profiling timer fires on the very
// thread that is busy allocating), so the range is reserved in chunks, each
// of which stays allocated once done, and a chunk is retried on EINTR.
func reserve(fd int, size int64) error {
	for off := int64(0); off < size; off += reserveChunk {
		n := min(reserveChunk, size-off)
		err := ignoringEINTR(func() error { return unix.Fallocate(fd, 0, off, n) })
		if errors.Is(err, unix.EOPNOTSUPP) && off == 0 {
			// A filesystem that cannot reserve space (not tmpfs):
			// ftruncate already set the size; go on without a
			// reservation.
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (o *Object) sizeError(op string, size int64, err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EFBIG) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("shm: create %s: %s %d bytes: %w: %w", o.path, op, size, ErrNoSpace, err)
	}
	return fmt.Errorf("shm: create %s: %s %d bytes: %w", o.path, op, size, err)
}

// discard undoes a failed Create: it removes the name if it still refers to
// the file this Object created, then closes the descriptor.
func (o *Object) discard() error {
	var errs []error
	var fst, pst unix.Stat_t
	if err := unix.Fstat(o.fd, &fst); err != nil {
		errs = append(errs, fmt.Errorf("fstat: %w", err))
	} else if err := unix.Lstat(o.path, &pst); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("lstat: %w", err))
		}
	} else if fst.Dev == pst.Dev && fst.Ino == pst.Ino {
		if err := unix.Unlink(o.path); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unlink: %w", err))
		}
	}
	if err := unix.Close(o.fd); err != nil {
		errs = append(errs, fmt.Errorf("close: %w", err))
	}
	o.fd = -1
	return errors.Join(errs...)
}

// Open opens the existing object called name. It fails with an error
// matching fs.ErrNotExist if there is none, ErrNotRegular if the name is a
// symbolic link, directory, FIFO, socket or device, and ErrForeignOwner if
// the file belongs to another uid and o.AllowForeignOwner is false. Open
// never blocks on a FIFO planted at the name.
func Open(name string, o Options) (*Object, error) {
	base, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	path, _ := PathIn(o.Dir, base)

	access := unix.O_RDWR
	if o.ReadOnly {
		access = unix.O_RDONLY
	}
	fd, err := openFile(path, access|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("shm: open %s: %w: a symbolic link (%w)", path, ErrNotRegular, err)
		case errors.Is(err, unix.EISDIR):
			return nil, fmt.Errorf("shm: open %s: %w: a directory (%w)", path, ErrNotRegular, err)
		case errors.Is(err, unix.ENXIO):
			// open(2) on a Unix socket, or on a device with no driver.
			return nil, fmt.Errorf("shm: open %s: %w: a socket or device (%w)", path, ErrNotRegular, err)
		}
		return nil, fmt.Errorf("shm: open %s: %w", path, err)
	}
	if err := checkOpened(fd, path, o.AllowForeignOwner); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return &Object{name: base, path: path, fd: fd, readOnly: o.ReadOnly}, nil
}

// checkOpened verifies that fd is a regular file owned by the caller.
func checkOpened(fd int, path string, allowForeign bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("shm: open %s: fstat: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("shm: open %s: %w: %s", path, ErrNotRegular, fileKind(st.Mode))
	}
	if euid := unix.Geteuid(); !allowForeign && st.Uid != uint32(euid) {
		return fmt.Errorf("shm: open %s: %w: owner uid %d, caller euid %d", path, ErrForeignOwner, st.Uid, euid)
	}
	return nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return fmt.Sprintf("file type %#o", mode&unix.S_IFMT)
}

// Name returns the object's name without its leading slash.
func (o *Object) Name() string { return o.name }

// Path returns the object's file path, such as "/dev/shm/orders".
func (o *Object) Path() string { return o.path }

// Fd returns the open file descriptor, or -1 after Close. It stays owned by
// the Object: do not close it, and note that a duplicate of it keeps the
// role locks alive (see the package documentation).
func (o *Object) Fd() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fd
}

// Stat reports the file's size, permission bits, owner and modification
// time, with fstat on the open descriptor.
func (o *Object) Stat() (Info, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("stat"); err != nil {
		return Info{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(o.fd, &st); err != nil {
		return Info{}, fmt.Errorf("shm: stat %s: %w", o.path, err)
	}
	return Info{
		Size:    st.Size,
		Mode:    fs.FileMode(st.Mode & uint32(fs.ModePerm)),
		UID:     st.Uid,
		GID:     st.Gid,
		ModTime: time.Unix(st.Mtim.Unix()),
		Blocks:  st.Blocks,
	}, nil
}

// Linked reports whether the object's path still names this open file:
// false once the name was unlinked, or unlinked and made again (another
// file, or anything else, at the path). The check is lstat of the path
// against fstat of the descriptor; an absent path is false, no error.
func (o *Object) Linked() (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("stat"); err != nil {
		return false, err
	}
	var fst, pst unix.Stat_t
	if err := unix.Fstat(o.fd, &fst); err != nil {
		return false, fmt.Errorf("shm: stat %s: %w", o.path, err)
	}
	if err := ignoringEINTR(func() error { return unix.Lstat(o.path, &pst) }); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("shm: stat %s: %w", o.path, err)
	}
	return fst.Dev == pst.Dev && fst.Ino == pst.Ino, nil
}

// Map maps the first size bytes of the object, shared and read-write (read
// only for an object opened ReadOnly), and
// returns them. The file must be at least size bytes long (checked with
// fstat; ErrTooSmall otherwise) and size must be positive. An Object holds
// one mapping at a time (ErrAlreadyMapped); Unmap or Close releases it, after
// which the returned slice must not be used.
func (o *Object) Map(size int) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("map"); err != nil {
		return nil, err
	}
	if o.mem != nil {
		return nil, fmt.Errorf("shm: map %s: %w (%d bytes)", o.path, ErrAlreadyMapped, len(o.mem))
	}
	if size <= 0 {
		return nil, fmt.Errorf("shm: map %s: size %d: %w", o.path, size, fs.ErrInvalid)
	}
	var st unix.Stat_t
	if err := unix.Fstat(o.fd, &st); err != nil {
		return nil, fmt.Errorf("shm: map %s: fstat: %w", o.path, err)
	}
	if int64(size) > st.Size {
		return nil, fmt.Errorf("shm: map %s: %w: want %d bytes, file has %d", o.path, ErrTooSmall, size, st.Size)
	}
	prot := unix.PROT_READ | unix.PROT_WRITE
	if o.readOnly {
		prot = unix.PROT_READ
	}
	mem, err := unix.Mmap(o.fd, 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: map %s: mmap %d bytes: %w", o.path, size, err)
	}
	o.mem = mem
	o.hit = trapRegister(mem)
	return mem, nil
}

// Hit returns the bus-error trap word of the current mapping (see
// trap_linux.go), or nil when the mapping is not trapped (no mapping, or
// the trap unavailable: then a truncated mapping raises SIGBUS as usual).
// The word becomes non-zero, once and for good, when an access past the
// end of a file that a peer shrank found zero pages in place of the
// region: from then on the mapping shows nothing any peer wrote. Read it
// with sync/atomic after the accesses it is to cover.
func (o *Object) Hit() *uint32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hit
}

// Unmap removes the mapping made by Map. Without a mapping it does nothing
// and returns nil.
func (o *Object) Unmap() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("unmap"); err != nil {
		return err
	}
	return o.unmapLocked()
}

func (o *Object) unmapLocked() error {
	if o.mem == nil {
		return nil
	}
	mem := o.mem
	o.mem, o.hit = nil, nil
	trapUnregister(mem)
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("shm: unmap %s: %w", o.path, err)
	}
	return nil
}

// Close unmaps the object if it is mapped and closes its descriptor, which
// releases its role locks. It does not remove the name (see Unlink). A
// second Close returns an error matching os.ErrClosed.
func (o *Object) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.checkOpen("close"); err != nil {
		return err
	}
	uerr := o.unmapLocked()
	fd := o.fd
	o.fd = -1
	// No EINTR retry: Linux releases the descriptor even when close
	// reports EINTR, and retrying could close a reused number.
	if err := unix.Close(fd); err != nil {
		return errors.Join(uerr, fmt.Errorf("shm: close %s: %w", o.path, err))
	}
	return uerr
}

func (o *Object) checkOpen(op string) error {
	if o.fd < 0 {
		return fmt.Errorf("shm: %s %s: %w", op, o.path, os.ErrClosed)
	}
	return nil
}

// Unlink removes the object called name from Dir. Mappings and open Objects
// stay usable; the memory is freed when the last one goes away. An absent
// object is an error matching fs.ErrNotExist.
func Unlink(name string) error {
	return UnlinkIn(Dir, name)
}

// UnlinkIn is Unlink for objects kept in dir (see Options.Dir); an empty
// dir means Dir.
func UnlinkIn(dir, name string) error {
	path, err := PathIn(dir, name)
	if err != nil {
		return err
	}
	if err := ignoringEINTR(func() error { return unix.Unlink(path) }); err != nil {
		return fmt.Errorf("shm: unlink %s: %w", path, err)
	}
	return nil
}

// List returns the names of the regular files in dir (an empty dir means
// Dir), sorted; it is what `shmchan ls` shows. An empty directory gives no
// names and no error.
func List(dir string) ([]string, error) {
	if dir == "" {
		dir = Dir
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("shm: list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// openFile is open(2) retried on EINTR.
func openFile(path string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// ignoringEINTR calls f until it returns something other than EINTR.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
