package shm

// The filesystem under the objects: what statfs(2) and stat(2) say about a
// directory, and whether this process may create files in it. For tools
// that check a machine (shmchan doctor); Create and Open do not use them.

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FSType is a filesystem's magic number (statfs f_type).
type FSType int64

// Filesystem types worth naming.
const (
	FSTmpfs   FSType = 0x01021994
	FSRamfs   FSType = 0x858458f6
	FSExt     FSType = 0xef53 // ext2, ext3 and ext4
	FSOverlay FSType = 0x794c7630
	FSXFS     FSType = 0x58465342
	FSBtrfs   FSType = 0x9123683e
	FSMqueue  FSType = 0x19800202
)

// String names the type: "tmpfs", "ext2/3/4", or "filesystem type 0x..".
func (t FSType) String() string {
	switch t {
	case FSTmpfs:
		return "tmpfs"
	case FSRamfs:
		return "ramfs"
	case FSExt:
		return "ext2/3/4"
	case FSOverlay:
		return "overlayfs"
	case FSXFS:
		return "xfs"
	case FSBtrfs:
		return "btrfs"
	case FSMqueue:
		return "mqueue"
	}
	return fmt.Sprintf("filesystem type %#x", int64(t))
}

// FS is what the kernel says about the filesystem a directory is on.
type FS struct {
	Type FSType
	// Size and Free are in bytes: the filesystem's size and what is
	// available to an unprivileged user (f_blocks and f_bavail times
	// f_bsize). Both are 0 for a tmpfs or ramfs without a size limit.
	Size, Free int64
	// Unlimited: a tmpfs or ramfs with no size limit (f_blocks is 0);
	// objects there are bounded by memory only.
	Unlimited bool
	// DevMajor and DevMinor are the device of the directory itself (stat
	// st_dev), as /proc/self/mountinfo writes it ("major:minor"): a mount
	// hidden under a later mount shows another device.
	DevMajor, DevMinor uint32
}

// FSStat reports on the filesystem that directory dir (an empty dir means
// Dir) is on, with statfs(2) and stat(2) of dir.
func FSStat(dir string) (FS, error) {
	if dir == "" {
		dir = Dir
	}
	var sfs unix.Statfs_t
	if err := ignoringEINTR(func() error { return unix.Statfs(dir, &sfs) }); err != nil {
		return FS{}, fmt.Errorf("shm: statfs %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Stat(dir, &st) }); err != nil {
		return FS{}, fmt.Errorf("shm: stat %s: %w", dir, err)
	}
	bs := int64(sfs.Bsize)
	out := FS{
		Type:     FSType(sfs.Type),
		Size:     int64(sfs.Blocks) * bs,
		Free:     int64(sfs.Bavail) * bs,
		DevMajor: unix.Major(uint64(st.Dev)),
		DevMinor: unix.Minor(uint64(st.Dev)),
	}
	out.Unlimited = sfs.Blocks == 0 && (out.Type == FSTmpfs || out.Type == FSRamfs)
	return out, nil
}

// CheckWritable returns nil if this process may create files in directory
// dir (an empty dir means Dir): access(2) for write and search with the
// effective user and group ids, as creating a file checks them. Otherwise
// the error wraps the errno (errors.Is(err, fs.ErrPermission) for a
// directory that does not let this user in).
func CheckWritable(dir string) error {
	if dir == "" {
		dir = Dir
	}
	err := ignoringEINTR(func() error { return unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS) })
	if err != nil {
		return fmt.Errorf("shm: access %s: %w", dir, err)
	}
	return nil
}
