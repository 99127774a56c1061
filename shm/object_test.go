package shm

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func mustCreate(t *testing.T, name string, size int64, o Options) *Object {
	t.Helper()
	obj, err := Create(name, size, o)
	if err != nil {
		t.Fatalf("Create(%q, %d): %v", name, size, err)
	}
	t.Cleanup(func() { _ = obj.Close() })
	return obj
}

func mustOpen(t *testing.T, name string, o Options) *Object {
	t.Helper()
	obj, err := Open(name, o)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	t.Cleanup(func() { _ = obj.Close() })
	return obj
}

func TestCreateOpenMapShared(t *testing.T) {
	name := uniqueName(t)
	a := mustCreate(t, "/"+name, 8192, Options{})
	if a.Name() != name || a.Path() != filepath.Join(Dir, name) {
		t.Errorf("Name, Path = %q, %q", a.Name(), a.Path())
	}
	if a.Fd() < 0 {
		t.Errorf("Fd = %d", a.Fd())
	}
	b := mustOpen(t, name, Options{})

	ma, err := a.Map(8192)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := b.Map(4096)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ma, make([]byte, 8192)) {
		t.Error("a new object is not zero-filled")
	}
	copy(ma, "hello from a")
	if got := string(mb[:12]); got != "hello from a" {
		t.Errorf("b reads %q", got)
	}
	copy(mb[100:], "reply from b")
	if got := string(ma[100:112]); got != "reply from b" {
		t.Errorf("a reads %q", got)
	}

	if _, err := b.Map(4096); !errors.Is(err, ErrAlreadyMapped) {
		t.Errorf("second Map: %v, want ErrAlreadyMapped", err)
	}
	if err := b.Unmap(); err != nil {
		t.Fatal(err)
	}
	if err := b.Unmap(); err != nil {
		t.Errorf("Unmap without a mapping: %v", err)
	}
	mb, err = b.Map(8192)
	if err != nil {
		t.Fatalf("Map after Unmap: %v", err)
	}
	if got := string(mb[100:112]); got != "reply from b" {
		t.Errorf("remapped b reads %q", got)
	}
}

func TestMapChecks(t *testing.T) {
	name := uniqueName(t)
	obj := mustCreate(t, name, 4096, Options{})
	if _, err := obj.Map(4097); !errors.Is(err, ErrTooSmall) {
		t.Errorf("Map(4097) of a 4096-byte file: %v, want ErrTooSmall", err)
	}
	for _, n := range []int{0, -1} {
		if _, err := obj.Map(n); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Map(%d): %v, want fs.ErrInvalid", n, err)
		}
	}
	// A size that is not a multiple of the page size is fine.
	m, err := obj.Map(100)
	if err != nil || len(m) != 100 {
		t.Fatalf("Map(100) = %d bytes, %v", len(m), err)
	}
}

func TestCloseTwice(t *testing.T) {
	name := uniqueName(t)
	obj, err := Create(name, 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Map(4096); err != nil {
		t.Fatal(err)
	}
	if err := obj.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := obj.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v, want os.ErrClosed", err)
	}
	if obj.Fd() != -1 {
		t.Errorf("Fd after Close = %d", obj.Fd())
	}
	if _, err := obj.Map(4096); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Map after Close: %v", err)
	}
	if _, err := obj.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Stat after Close: %v", err)
	}
	if _, err := obj.TryLock(0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("TryLock after Close: %v", err)
	}
	if err := obj.Unmap(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Unmap after Close: %v", err)
	}
	// Close does not remove the name.
	if _, err := os.Lstat(obj.Path()); err != nil {
		t.Errorf("after Close: %v", err)
	}
}

func TestExistAndNotExist(t *testing.T) {
	name := uniqueName(t)
	if _, err := Open(name, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of an absent name: %v, want fs.ErrNotExist", err)
	}
	if err := Unlink(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Unlink of an absent name: %v, want fs.ErrNotExist", err)
	}
	mustCreate(t, name, 64, Options{})
	if _, err := Create(name, 64, Options{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create: %v, want fs.ErrExist", err)
	}
	if err := Unlink("/" + name); err != nil {
		t.Fatalf("Unlink: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(Dir, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Unlink: %v", err)
	}
}

func TestCreateBadArguments(t *testing.T) {
	name := uniqueName(t)
	if _, err := Create(name, -1, Options{}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("negative size: %v", err)
	}
	for _, perm := range []fs.FileMode{fs.ModeSetuid | 0o600, fs.ModeSticky | 0o600, fs.ModeDir | 0o700} {
		if _, err := Create(name, 64, Options{Perm: perm}); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("perm %v: %v", perm, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(Dir, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused Create left a file: %v", err)
	}
	// Size zero is allowed: an empty object that cannot be mapped.
	obj := mustCreate(t, name, 0, Options{})
	if _, err := obj.Map(1); !errors.Is(err, ErrTooSmall) {
		t.Errorf("Map of an empty object: %v", err)
	}
}

func TestPermIgnoresUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o077} {
		for _, tc := range []struct{ perm, want fs.FileMode }{
			{0, 0o600},
			{0o600, 0o600},
			{0o640, 0o640},
			{0o604, 0o604},
			{0o666, 0o666},
			{0o400, 0o400},
		} {
			old := syscall.Umask(umask)
			name := uniqueName(t)
			obj, err := Create(name, 4096, Options{Perm: tc.perm})
			syscall.Umask(old)
			if err != nil {
				t.Fatalf("umask %#o, perm %v: %v", umask, tc.perm, err)
			}
			info, err := obj.Stat()
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(obj.Path())
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode != tc.want || fi.Mode() != tc.want {
				t.Errorf("umask %#o, perm %v: Stat mode %v, lstat mode %v; want %v", umask, tc.perm, info.Mode, fi.Mode(), tc.want)
			}
			if err := obj.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestStat(t *testing.T) {
	name := uniqueName(t)
	start := time.Now().Add(-2 * time.Second)
	obj := mustCreate(t, name, 12345, Options{Perm: 0o640})
	info, err := obj.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 12345 || info.Mode != 0o640 || info.UID != uint32(os.Geteuid()) || info.GID != uint32(os.Getegid()) {
		t.Errorf("Stat = %+v", info)
	}
	if info.ModTime.Before(start) || info.ModTime.After(time.Now().Add(2*time.Second)) {
		t.Errorf("ModTime %v not near now", info.ModTime)
	}
}

func TestLinked(t *testing.T) {
	name := uniqueName(t)
	obj := mustCreate(t, name, 4096, Options{})
	if ok, err := obj.Linked(); !ok || err != nil {
		t.Fatalf("Linked of a fresh object = %v, %v", ok, err)
	}
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	if ok, err := obj.Linked(); ok || err != nil {
		t.Errorf("Linked after Unlink = %v, %v; want false, nil", ok, err)
	}
	// Another object made at the same name is not this one.
	mustCreate(t, name, 4096, Options{})
	if ok, err := obj.Linked(); ok || err != nil {
		t.Errorf("Linked with another object at the name = %v, %v; want false, nil", ok, err)
	}
	// Nor is a symbolic link to it: the file moved away, a link in its place.
	other := mustOpen(t, name, Options{})
	moved := uniqueName(t)
	if err := os.Rename(filepath.Join(Dir, name), filepath.Join(Dir, moved)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(Dir, moved), filepath.Join(Dir, name)); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.Linked(); ok || err != nil {
		t.Errorf("Linked with a symbolic link to it at the name = %v, %v; want false, nil", ok, err)
	}
	if err := obj.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Linked(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Linked after Close: %v, want os.ErrClosed", err)
	}
}

func TestCreateDoesNotFollowSymlink(t *testing.T) {
	link := uniqueName(t)
	target := uniqueName(t)
	if err := os.Symlink(filepath.Join(Dir, target), filepath.Join(Dir, link)); err != nil {
		t.Fatal(err)
	}
	// Dangling link: Create must neither follow it nor create the target.
	if _, err := Create(link, 64, Options{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over a symlink: %v, want fs.ErrExist", err)
	}
	if _, err := os.Lstat(filepath.Join(Dir, target)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create followed the symlink and made its target: %v", err)
	}
}

func TestOpenRefusesSymlink(t *testing.T) {
	target := uniqueName(t)
	link := uniqueName(t)
	mustCreate(t, target, 4096, Options{})
	if err := os.Symlink(filepath.Join(Dir, target), filepath.Join(Dir, link)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(link, Options{})
	if !errors.Is(err, ErrNotRegular) || !errors.Is(err, unix.ELOOP) {
		t.Errorf("Open of a symlink to a valid object: %v, want ErrNotRegular (ELOOP)", err)
	}
}

// openWithin runs Open in a goroutine and fails the test if it blocks.
func openWithin(t *testing.T, name string, d time.Duration) error {
	t.Helper()
	type result struct {
		obj *Object
		err error
	}
	done := make(chan result, 1)
	go func() {
		obj, err := Open(name, Options{})
		done <- result{obj, err}
	}()
	select {
	case r := <-done:
		if r.obj != nil {
			_ = r.obj.Close()
		}
		return r.err
	case <-time.After(d):
		t.Fatalf("Open(%q) still blocked after %v", name, d)
		return nil
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	fifo := uniqueName(t)
	if err := unix.Mkfifo(filepath.Join(Dir, fifo), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := uniqueName(t)
	if err := os.Mkdir(filepath.Join(Dir, dir), 0o700); err != nil {
		t.Fatal(err)
	}
	sock := uniqueName(t)
	l, err := net.Listen("unix", filepath.Join(Dir, sock))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	for _, name := range []string{fifo, dir, sock} {
		if err := openWithin(t, name, 5*time.Second); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open(%s): %v, want ErrNotRegular", name, err)
		}
		if _, err := Create(name, 64, Options{}); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Create(%s): %v, want fs.ErrExist", name, err)
		}
	}
}

func TestForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the object to another uid")
	}
	name := uniqueName(t)
	obj := mustCreate(t, name, 4096, Options{})
	if err := os.Chown(obj.Path(), 12345, 12345); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name, Options{}); !errors.Is(err, ErrForeignOwner) {
		t.Errorf("Open of uid 12345's object: %v, want ErrForeignOwner", err)
	}
	other := mustOpen(t, name, Options{AllowForeignOwner: true})
	info, err := other.Stat()
	if err != nil || info.UID != 12345 || info.GID != 12345 {
		t.Errorf("Stat = %+v, %v", info, err)
	}
}

// mountSmallTmpfs mounts a 1 MiB tmpfs on a temporary directory and
// unmounts it when the test ends.
func mountSmallTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("cannot mount a tmpfs here (%v); ENOSPC is not tested", err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	// Registered after TempDir's removal, so it runs before it.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func freeBlocks(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bfree
}

func TestCreateNoSpace(t *testing.T) {
	dir := mountSmallTmpfs(t)
	o := Options{Dir: dir}
	name := uniqueName(t)
	free := freeBlocks(t, dir)

	_, err := Create(name, 4<<20, o)
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Create of 4 MiB in a 1 MiB tmpfs: %v, want ErrNoSpace and ENOSPC", err)
	}
	names, err := List(dir)
	if err != nil || len(names) != 0 {
		t.Errorf("after the failed Create the directory holds %q (%v)", names, err)
	}
	if got := freeBlocks(t, dir); got != free {
		t.Errorf("free blocks %d after the failed Create, %d before", got, free)
	}

	// The reservation is real: a second object that would fit only if
	// the first were sparse is refused at Create.
	a, err := Create(name, 768<<10, o)
	if err != nil {
		t.Fatalf("Create of 768 KiB: %v", err)
	}
	defer func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
		if err := UnlinkIn(dir, name); err != nil {
			t.Error(err)
		}
	}()
	other := uniqueName(t)
	if _, err := Create(other, 512<<10, o); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Create of 512 KiB next to a reserved 768 KiB: %v, want ErrNoSpace", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, other)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed Create left its file: %v", err)
	}
	m, err := a.Map(768 << 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = 0xA5 // every page was reserved: no SIGBUS
	}
}

func TestObjectInOptionsDir(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t)
	obj := mustCreate(t, name, 4096, Options{Dir: dir})
	if want := filepath.Join(dir, name); obj.Path() != want {
		t.Errorf("Path = %q, want %q", obj.Path(), want)
	}
	if _, err := os.Lstat(filepath.Join(Dir, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Options.Dir ignored: %v", err)
	}
	mustOpen(t, name, Options{Dir: dir})
	if err := UnlinkIn(dir, name); err != nil {
		t.Fatal(err)
	}
	if err := UnlinkIn(dir, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second UnlinkIn: %v", err)
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	names, err := List(dir)
	if err != nil || len(names) != 0 {
		t.Fatalf("List of an empty dir = %q, %v", names, err)
	}
	for _, n := range []string{"b", "a", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	names, err = List(dir)
	if err != nil || len(names) != 3 || names[0] != "a" || names[1] != "b" || names[2] != "c" {
		t.Errorf("List = %q, %v; want [a b c]", names, err)
	}
	if _, err := List(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of an absent dir: %v", err)
	}
	if _, err := List(""); err != nil {
		t.Errorf("List of Dir: %v", err)
	}
}

// TestCreateReservesEveryPage checks that a size spanning several
// fallocate chunks is allocated in full, not sparse.
func TestCreateReservesEveryPage(t *testing.T) {
	name := uniqueName(t)
	const size = 2*reserveChunk + 12345
	obj := mustCreate(t, name, size, Options{})
	var st unix.Stat_t
	if err := unix.Fstat(obj.Fd(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size || st.Blocks*512 < size {
		t.Errorf("size %d, %d bytes allocated; want %d and all of it", st.Size, st.Blocks*512, size)
	}
}
