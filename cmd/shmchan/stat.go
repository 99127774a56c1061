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
start time, since when, alive or dead, takeovers, values sent or
received, and for the receivers of a work queue or broadcast their
position), the doorbell queues of a region that waits on message queues,
and the processes that have the region open. The region is only read.

A work queue's receivers compete for values: the claim head is how many
positions they took, a receiver's position "claim P" the one it holds
(taken, not yet received; if it dies, another receiver gets it), "idle"
none. A broadcast's receivers each read every value: a receiver's
position is its cursor (the next position it reads) and lag (tail -
cursor: values it has still to read; with drop-oldest, more than the
capacity means values it will miss), or "left" once it stopped.

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

// claimedText says what a work queue's claim head means: "3 being
// received, 2 unclaimed".
func claimedText(head, claimHead, tail uint64) string {
	if head > claimHead || claimHead > tail {
		return fmt.Sprintf("IMPOSSIBLE: head %d, claim head %d, tail %d", head, claimHead, tail)
	}
	return fmt.Sprintf("%d being received, %d unclaimed", claimHead-head, tail-claimHead)
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
		if h.Mode.FanOut() || h.Consumers != 0 {
			line("consumers", "%d receiver entr%s", h.Consumers, plural(uint64(h.Consumers), "y", "ies"))
		}
		if h.Mode == layout.ModeBroadcast || h.Overflow != 0 {
			line("overflow", "%s", h.Overflow)
		}
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
		bcast := r.Valid && r.hdr().Mode == layout.ModeBroadcast
		if bcast {
			// Each receiver has its own cursor; head is a statistic.
			line("head", "%d (lowest bound a sender saw; receivers' cursors are below)", c.Head)
		} else {
			line("head", "%d", c.Head)
		}
		if c.ClaimHead != nil {
			line("claim head", "%d (%s)", *c.ClaimHead, claimedText(c.Head, *c.ClaimHead, c.Sent))
		}
		if r.Valid {
			n, ok := r.fill()
			switch {
			case ok && bcast:
				line("fill", "%d of %d (backlog of the slowest live receiver)", n, r.hdr().Capacity)
			case ok:
				line("fill", "%d of %d", n, r.hdr().Capacity)
			case bcast:
				line("fill", "IMPOSSIBLE: a receiver's cursor is ahead of tail %d or more than capacity %d behind it", c.Sent, r.hdr().Capacity)
			default:
				line("fill", "IMPOSSIBLE: head %d, tail %d, capacity %d", c.Head, c.Sent, r.hdr().Capacity)
			}
		}
		section("counters")
		line("sent", "%d", c.Sent)
		if bcast {
			line("received", "each receiver's own count, under roles")
		} else {
			line("received", "%d", c.Head)
		}
		if c.Lagged != nil {
			line("lagged", "%d (values receivers missed, summed over them)", *c.Lagged)
		}
		line("abandoned", "%d", c.Abandoned)
		line("receiver sleeps", "%d", c.RecvSleeps)
		line("sender sleeps", "%d", c.SendSleeps)
		line("wakes by senders", "%d", c.SenderWakes)
		line("wakes by receiver", "%d", c.ReceiverWakes)
		// A single sleeper's waiting word holds 1 + the futex value it
		// sleeps on (layout/FORMAT.md, Waiting): show it as yes/no.
		if r.fanOut() {
			line("receivers waiting", "%d", c.RecvWaiting)
		} else {
			line("receiver waiting", "%s (word %d)", yesNo(c.RecvWaiting != 0), c.RecvWaiting)
		}
		if r.multiSender() {
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
		fmt.Fprintln(tw, "  ENTRY\tROLE\tPID\tSTATE\tSINCE\tSTART(ticks)\tVALUES\tTAKEOVERS\tSLEEPING\tPOSITION")
		for _, ro := range r.Roles {
			role, values := ro.Role, "-" // SPSC: the tail and head are the counts
			switch {
			case ro.Received != nil:
				role, values = fmt.Sprintf("receiver#%d", *ro.Consumer), fmt.Sprint(*ro.Received)
			case ro.Role == "sender" && r.multiSender():
				values = fmt.Sprint(ro.Sent)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n",
				ro.Entry, role, ro.PID, ro.State, fmtTime(ro.Since), ro.Start, values, ro.Takeovers, yesNo(ro.Sleeping), orDash(ro.position()))
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
