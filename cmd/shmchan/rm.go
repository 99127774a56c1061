package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/shm"
)

const rmUsage = `usage: shmchan rm [-f] [-v] NAME...
       shmchan rm -stale [-prefix P] [-dry-run]

Removes regions from /dev/shm, with their doorbell queues (<name>.rx and
<name>.tx) if they have any. Processes that have a region open keep using
it; its memory is freed when the last one lets go, but nobody can open it
by name any more.

A region with a live role (a sender or receiver whose process is running)
is refused unless -f is given. A file that is not a shmchan region is
refused unless -f is given (then only the file is removed, no queues).

-stale removes, instead of named regions, every region in /dev/shm that
is stale: it validates, every role in it (senders and receivers, every
receiver entry of a work queue or broadcast included) is dead or free, it
is empty (everything sent was received; a work queue's values held by
dead receivers count as not received, as a new receiver would get them;
a broadcast with no live receiver is empty, as a new one starts at the
tail), no process this user can see has it open, and it belongs to this
user. It prints the name of each region it removes.
It also removes doorbell queues left without their region (both queues
there, no region file; found only when /dev/mqueue is mounted), which
would make a new Create of that name fail.
Note that a process may have created a region and not yet have used it; if
it does not keep it open (the library does), -stale cannot tell.

  -f         remove regions with live roles, and files that are not
             regions; a missing name is not an error
  -v         print each name removed
  -stale     remove the stale regions (no NAME)
  -prefix P  with -stale: only regions whose names start with P
  -dry-run   with -stale: print what would be removed, remove nothing

Exit status: 0 if everything asked for was removed, 1 if anything failed,
2 for a usage error.
`

func runRm(args []string) int {
	fset := flag.NewFlagSet("shmchan rm", flag.ContinueOnError)
	force := fset.Bool("f", false, "remove even with live roles; ignore missing names")
	verbose := fset.Bool("v", false, "print each name removed")
	stale := fset.Bool("stale", false, "remove every stale region")
	dry := fset.Bool("dry-run", false, "with -stale, only print what would be removed")
	prefix := fset.String("prefix", "", "with -stale, only names with this prefix")
	operands, ok, code := parseArgs(fset, args, rmUsage)
	if !ok {
		return code
	}
	switch {
	case *stale && len(operands) > 0:
		fmt.Fprintf(os.Stderr, "shmchan rm: -stale takes no names\n%s", rmUsage)
		return 2
	case *stale && *force:
		fmt.Fprintf(os.Stderr, "shmchan rm: -stale and -f do not go together\n%s", rmUsage)
		return 2
	case (*dry || *prefix != "") && !*stale:
		fmt.Fprintf(os.Stderr, "shmchan rm: -dry-run and -prefix go with -stale\n%s", rmUsage)
		return 2
	case !*stale && len(operands) == 0:
		fmt.Fprintf(os.Stderr, "shmchan rm: missing region name\n%s", rmUsage)
		return 2
	}
	if *stale {
		return rmStale(strings.TrimPrefix(*prefix, "/"), *dry)
	}
	status := 0
	for _, arg := range operands {
		if err := rmOne(arg, *force); err != nil {
			errf("rm", "%s: %v", arg, err)
			status = 1
		} else if *verbose {
			fmt.Println(arg)
		}
	}
	return status
}

func rmOne(arg string, force bool) error {
	name, err := cleanArg(arg)
	if err != nil {
		return err
	}
	r, err := inspect(name)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if force {
			return nil
		}
		return errors.New("no such region")
	case errors.Is(err, region.ErrNotRegion):
		if !force {
			return fmt.Errorf("%v (-f removes it anyway)", err)
		}
		return unlinkFileOnly(name)
	default:
		// Cannot look inside (permission, say): only -f goes ahead blind.
		if !force {
			return fmt.Errorf("%s; cannot check for live roles (-f removes it anyway)", describeOpenError(err))
		}
		return unlink(name)
	}
	if r.snap.AnyHeld && !force {
		return fmt.Errorf("in use: %s (-f removes it anyway)", describeLive(r))
	}
	return unlink(name)
}

// describeLive says which roles are alive: "receiver pid 12 alive, sender
// pid 13 alive".
func describeLive(r *regionInfo) string {
	var parts []string
	for _, ro := range r.liveRoles() {
		role := ro.Role
		if ro.Consumer != nil {
			role = fmt.Sprintf("receiver#%d", *ro.Consumer)
		}
		parts = append(parts, fmt.Sprintf("%s pid %d alive", role, ro.PID))
	}
	if len(parts) == 0 {
		return "a role lock is held"
	}
	return strings.Join(parts, ", ")
}

// unlink removes a region and its doorbells (the caller prints the name).
func unlink(name string) error {
	err := region.Unlink(name)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no such region (removed meanwhile)")
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("permission denied: %v", err)
	}
	return err
}

// unlinkFileOnly removes a file that is not a region: its name may be
// shared with unrelated message queues, which are left alone.
func unlinkFileOnly(name string) error {
	if err := shm.Unlink(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}

// isStale reports whether r may be removed by rm -stale, and if not, why.
func isStale(r *regionInfo) (bool, string) {
	euid := uint32(os.Geteuid())
	switch {
	case !r.Valid:
		return false, "does not validate"
	case r.snap.AnyHeld:
		return false, "has a live role"
	case r.Counters == nil:
		return false, "no counters"
	case len(r.Attached) > 0:
		return false, "open in a process"
	case euid != 0 && r.UID != euid:
		return false, "belongs to another user"
	}
	if n, ok := r.fill(); !ok || n != 0 {
		return false, "not empty"
	}
	return true, ""
}

func rmStale(prefix string, dry bool) int {
	names, err := shm.List(shmDir)
	if err != nil {
		errf("rm", "%v", err)
		return 1
	}
	attached := attachedPIDs()
	status := 0
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		r, err := inspect(name)
		if err != nil {
			continue
		}
		r.Attached = attached[r.Path]
		if ok, _ := isStale(r); !ok {
			continue
		}
		if dry {
			fmt.Printf("would remove %s\n", name)
			continue
		}
		if err := unlink(name); err != nil {
			errf("rm", "%s: %v", name, err)
			status = 1
			continue
		}
		fmt.Printf("removed %s\n", name)
	}
	if rmStaleBells(prefix, dry) != 0 {
		status = 1
	}
	return status
}
