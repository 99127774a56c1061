package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/shmchan/shmchan/layout"
)

const statUsage = `usage: shmchan stat [-json] NAME

Shows everything about one region: the file (size, owner, permission
bits), every header field and whether the header validates (and if not,
exactly what is wrong), the indices and fill, the counters (sent,
received, abandoned, sleeps and wake-ups), the role entries (pid, process
start time, since when, alive or dead, takeovers, values sent), the
doorbell queues of a region that waits on message queues, and the
processes that have the region open. The region is only read.

NAME is the region's name, with or without a leading slash, or its path
in /dev/shm.

Exit status: 0 if the region validates, 1 if it does not (everything that
could be read is still shown) or cannot be read, 2 for a usage error.

  -json   print one JSON object
`

func runStat(args []string) int {
	fset := flag.NewFlagSet("shmchan stat", flag.ContinueOnError)
	asJSON := fset.Bool("json", false, "print JSON")
	operands, ok, code := parseArgs(fset, args, statUsage)
	if !ok {
		return code
	}
	if len(operands) != 1 {
		fmt.Fprintf(os.Stderr, "shmchan stat: want one region name, got %d arguments\n%s", len(operands), statUsage)
		return 2
	}
	arg := operands[0]
	name, err := cleanArg(arg)
	if err != nil {
		errf("stat", "%s: %v", arg, err)
		return 1
	}
	r, err := inspect(name)
	if err != nil {
		errf("stat", "%s: %s", arg, describeOpenError(err))
		return 1
	}
	r.Attached = attachedPIDs()[r.Path]
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			errf("stat", "%v", err)
			return 1
		}
	} else {
		printStat(os.Stdout, r)
	}
	if !r.Valid {
		return 1
	}
	return 0
}

func printStat(w io.Writer, r *regionInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(key, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t%s\n", key, fmt.Sprintf(format, args...))
	}
	section := func(title string) { fmt.Fprintf(tw, "%s\n", title) }

	fmt.Fprintf(tw, "region %s\n", r.Path)
	section("file")
	line("size", "%d bytes (%s)", r.Size, humanBytes(r.Size))
	line("owner", "%s (uid %d), group %s (gid %d)", r.Owner, r.UID, r.Group, r.GID)
	line("mode", "%s (%#o)", r.PermStr, uint32(r.Perm))
	line("modified", "%s", r.ModTime.Format("2006-01-02 15:04:05.000"))
	if r.Valid {
		line("valid", "yes")
	} else {
		line("valid", "NO: %s", r.Error)
	}
	line("ready", "%s", yesNo(r.Ready))

	if h := r.snap.Stored; h != nil {
		section("header")
		line("magic", "%q", h.Magic)
		line("version", "%d (this tool reads %d)", h.Version, layout.Version)
		line("mode", "%s", modeName(h.Mode))
		line("wait", "%s", h.Wait)
		line("capacity", "%d slots", h.Capacity)
		line("max message", "%d bytes", h.MaxMsg)
		line("slot size", "%d bytes", h.SlotSize)
		line("producers", "%d sender entr%s", h.Producers, plural(uint64(h.Producers), "y", "ies"))
		line("flags", "%s", flagNames(h.Flags))
		line("type", "%s", orDash(printable(h.TypeName)))
		line("codec", "%s", orDash(printable(h.CodecName)))
		line("fingerprint", "%016x", h.Fingerprint)
		line("data offset", "%d", h.DataOffset)
		line("total size", "%d bytes", h.TotalSize)
		creator := "exited"
		if processAlive(h.CreatorPID) {
			creator = "a process with this pid is running"
		}
		line("creator", "pid %d (%s), uid %d (%s)", h.CreatorPID, creator, h.CreatorUID, userName(h.CreatorUID))
		line("created", "%s", fmtTime(h.Created))
		sum := "ok"
		if h.Checksum != h.Computed {
			sum = fmt.Sprintf("MISMATCH, computed %016x", h.Computed)
		}
		line("checksum", "%016x (%s)", h.Checksum, sum)
	}

	if c := r.Counters; c != nil {
		section("indices")
		line("tail", "%d%s", c.Sent, ifThen(c.Closed, " (closed for sending)", ""))
		line("head", "%d", c.Head)
		if r.Valid {
			if n, ok := r.fill(); ok {
				line("fill", "%d of %d", n, r.hdr().Capacity)
			} else {
				line("fill", "IMPOSSIBLE: head %d, tail %d, capacity %d", c.Head, c.Sent, r.hdr().Capacity)
			}
		}
		section("counters")
		line("sent", "%d", c.Sent)
		line("received", "%d", c.Head)
		line("abandoned", "%d", c.Abandoned)
		line("receiver sleeps", "%d", c.RecvSleeps)
		line("sender sleeps", "%d", c.SendSleeps)
		line("wakes by senders", "%d", c.SenderWakes)
		line("wakes by receiver", "%d", c.ReceiverWakes)
		// A single sleeper's waiting word holds 1 + the futex value it
		// sleeps on (layout/FORMAT.md, Waiting): show it as yes/no.
		line("receiver waiting", "%s (word %d)", yesNo(c.RecvWaiting != 0), c.RecvWaiting)
		if r.isMPSC() {
			line("senders waiting", "%d", c.SendWaiters)
		} else {
			line("sender waiting", "%s (word %d)", yesNo(c.SendWaiters != 0), c.SendWaiters)
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "roles")
	if len(r.Roles) == 0 {
		fmt.Fprintln(w, "  none taken")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ENTRY\tROLE\tPID\tSTATE\tSINCE\tSTART(ticks)\tSENT\tTAKEOVERS\tSLEEPING")
		for _, ro := range r.Roles {
			sent := "-" // SPSC: the tail is the count
			if ro.Role == "sender" && r.isMPSC() {
				sent = fmt.Sprint(ro.Sent)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\t%d\t%s\t%d\t%s\n",
				ro.Entry, ro.Role, ro.PID, ro.State, fmtTime(ro.Since), ro.Start, sent, ro.Takeovers, yesNo(ro.Sleeping))
		}
		tw.Flush()
	}

	if r.Valid && r.hdr().Wait == layout.WaitMQ {
		fmt.Fprintln(w, "doorbells")
		for _, b := range r.Bells {
			switch {
			case b.Error != "":
				fmt.Fprintf(w, "  %s: %s\n", b.Name, b.Error)
			case b.Exists:
				fmt.Fprintf(w, "  %s: exists, %d of %d pending\n", b.Name, b.Pending, b.MaxMsg)
			default:
				fmt.Fprintf(w, "  %s: MISSING\n", b.Name)
			}
		}
	}

	fmt.Fprintln(w, "attached")
	if len(r.Attached) == 0 {
		fmt.Fprintln(w, "  no process has it open (that this user can see)")
	} else {
		var pids []string
		for _, p := range r.Attached {
			pids = append(pids, fmt.Sprint(p))
		}
		fmt.Fprintf(w, "  pids %s\n", strings.Join(pids, " "))
	}
}
