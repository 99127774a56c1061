package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountinfoDevice returns the "major:minor" of the mount at exactly dir
// that /proc/self/mountinfo lists last.
func mountinfoDevice(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mountinfo: %v", err)
	}
	dev := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			dev = f[2]
		}
	}
	return dev
}

// TestFSStatSmallTmpfs: a 1 MiB tmpfs is a tmpfs of 1 MiB with a limit,
// whose free space shrinks by what a new object reserves, and whose
// device is the one mountinfo lists for it.
func TestFSStatSmallTmpfs(t *testing.T) {
	dir := mountSmallTmpfs(t)
	st, err := FSStat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != FSTmpfs || st.Type.String() != "tmpfs" || st.Unlimited || st.Size != 1<<20 || st.Free != st.Size {
		t.Fatalf("FSStat of an empty 1 MiB tmpfs = %+v", st)
	}
	if got, want := fmt.Sprintf("%d:%d", st.DevMajor, st.DevMinor), mountinfoDevice(t, dir); got != want {
		t.Errorf("device %s, mountinfo says %s", got, want)
	}
	name := uniqueName(t)
	obj, err := Create(name, 256<<10, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	after, err := FSStat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Free != st.Free-256<<10 {
		t.Errorf("free %d after a 256 KiB object, %d before", after.Free, st.Free)
	}
	info, err := obj.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if info.Blocks*512 != 256<<10 {
		t.Errorf("a created object of 256 KiB has %d blocks allocated, want all %d", info.Blocks, 256<<10/512)
	}
}

// TestStatBlocksSparse: Blocks counts allocated pages, not the size: a
// file grown with truncate has none until written.
func TestStatBlocksSparse(t *testing.T) {
	name := uniqueName(t)
	path := filepath.Join(Dir, name)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	obj, err := Open(name, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil || info.Size != 1<<20 || info.Blocks != 0 {
		t.Fatalf("a truncated file: %+v, %v; want 1 MiB and no blocks", info, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte{1}, 4096)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if info, err = obj.Stat(); err != nil || info.Blocks*512 != int64(os.Getpagesize()) {
		t.Errorf("after writing one byte: %d blocks, %v; want one page", info.Blocks, err)
	}
}

func TestFSStatDir(t *testing.T) {
	st, err := FSStat("")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size < st.Free || st.Free < 0 || (st.Unlimited && st.Size != 0) {
		t.Errorf("FSStat(%s) = %+v", Dir, st)
	}
	if _, err := FSStat(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FSStat of an absent directory: %v", err)
	}
	if s := FSType(0x1234).String(); s != "filesystem type 0x1234" {
		t.Errorf("an unknown type is %q", s)
	}
}

func TestCheckWritable(t *testing.T) {
	if err := CheckWritable(""); err != nil {
		t.Errorf("CheckWritable(%s): %v", Dir, err)
	}
	dir := t.TempDir()
	if err := CheckWritable(dir); err != nil {
		t.Errorf("CheckWritable of a new temporary directory: %v", err)
	}
	if err := CheckWritable(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckWritable of an absent directory: %v", err)
	}
	if os.Geteuid() != 0 {
		locked := filepath.Join(dir, "locked")
		if err := os.Mkdir(locked, 0o500); err != nil {
			t.Fatal(err)
		}
		if err := CheckWritable(locked); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("CheckWritable of a mode 0500 directory: %v", err)
		}
		return
	}
	// Root may write anywhere; a read-only mount stops even root.
	ro := mountSmallTmpfs(t)
	if err := remountReadOnly(ro); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	if err := CheckWritable(ro); err == nil {
		t.Errorf("CheckWritable of a read-only mount: nil")
	}
}

func remountReadOnly(dir string) error {
	return unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
}
