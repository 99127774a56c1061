package main

// The doctor's checks of the regions themselves: damaged, stale, foreign or
// world-readable regions, their receivers, and doorbells left without a
// region. The machine's checks are in doctor.go.

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/shmchan/shmchan"
)

// checkRegions reports damaged, stale, foreign and open regions.
func (d *doctor) checkRegions(names []string, prefix string, regions []*regionSnap, missing int) {
	euid := uint32(os.Geteuid())
	var stale []string
	bad := missing
	for _, s := range regions {
		n := s.Name
		before := d.problems
		if !s.Valid {
			fix := fmt.Sprintf("look at it with 'shmchan stat %s'; once no process uses it, 'shmchan rm -f %s'.", n, n)
			if s.NotReady {
				d.add(levelProblem, "regions", fix, "%s: its creator never finished setting it up (ready word not set).", n)
			} else {
				d.add(levelProblem, "regions", fix, "%s does not validate: %v.", n, s.Err)
			}
		}
		if s.UID != euid {
			d.add(levelProblem, "regions", fmt.Sprintf("run as uid %d, or chown %d %s (its users must agree), or open it with shmchan.WithAllowForeignOwner.", s.UID, euid, s.Path),
				"%s is owned by %s (uid %d), not by you (uid %d): Open refuses it.", n, s.Owner, s.UID, euid)
		}
		if s.Perm&0o007 != 0 {
			d.add(levelProblem, "regions", fmt.Sprintf("chmod o-rwx %s, and create it with shmchan.WithPerm(0o600) (0o660 to share it with a group).", s.Path),
				"%s has mode %v: every user on the machine can %s it.", n, s.Perm, ifThen(s.Perm&0o002 != 0, "read and corrupt", "read"))
		} else if s.Perm&0o070 != 0 {
			d.add(levelNote, "regions", "", "%s has mode %v: shared with group %d.", n, s.Perm, s.GID)
		}
		if s.Valid && s.Wait == shmchan.WaitSpin {
			d.add(levelNote, "regions", "", "%s waits by spinning: a waiting side keeps a CPU core busy even when idle (WithWait(WaitFutex) sleeps).", n)
		}
		if s.Valid && !s.AnyHeld && len(s.Attached) == 0 {
			switch {
			case !s.FillOK:
				d.add(levelProblem, "regions", fmt.Sprintf("'shmchan stat %s'; 'shmchan rm %s' if nobody needs it.", n, n),
					"%s: no live role, nobody has it open, and its indices are impossible.", n)
			case s.Fill > 0 && !s.Broadcast: // a broadcast's new receivers start at the tail
				d.add(levelProblem, "regions", fmt.Sprintf("if nobody will read them: shmchan rm %s", n),
					"%s: no live role and nobody has it open, but %d value%s wait unread.", n, s.Fill, ifThen(s.Fill == 1, "", "s"))
			case euid != 0 && s.UID != euid:
				d.add(levelProblem, "regions", fmt.Sprintf("run 'shmchan rm -stale' as uid %d.", s.UID),
					"%s is stale (no live role, nobody has it open, empty).", n)
			default:
				stale = append(stale, n)
			}
		} else if s.Valid {
			dr, ds := s.deadRoles()
			if dr+ds > 0 {
				d.add(levelNote, "regions", "", "%s: %s died without letting go of %s role%s; the next process to take %s takes over.",
					n, plural(uint64(dr+ds), "a holder", "holders"), strings.Join(deadWhich(dr, ds, s.fanOut()), " and "), ifThen(dr+ds == 1, "", "s"),
					ifThen(dr+ds == 1, "it", "them"))
			}
		}
		if s.Valid && s.fanOut() {
			d.checkReceivers(s)
		}
		if d.problems > before {
			bad++
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		fix := "shmchan rm -stale"
		switch {
		case len(names) > 0:
			fix = "shmchan rm " + strings.Join(stale, " ") + " (or 'shmchan rm -stale' for every stale region)"
		case prefix != "":
			fix = "shmchan rm -stale -prefix " + prefix
		}
		d.add(levelProblem, "stale", fix+".", "%d stale region%s (no live role, nobody has %s open, empty): %s.",
			len(stale), ifThen(len(stale) == 1, "", "s"), ifThen(len(stale) == 1, "it", "them"), strings.Join(stale, ", "))
		bad += len(stale)
	}
	if bad == 0 {
		scope := "in /dev/shm"
		switch {
		case len(names) > 0:
			scope = "named"
		case prefix != "":
			scope = fmt.Sprintf("with prefix %q", prefix)
		}
		d.add(levelOK, "regions", "", "%d region%s %s, none damaged, stale, foreign or open to others.", len(regions), ifThen(len(regions) == 1, "", "s"), scope)
	}
}

func deadWhich(receivers, senders int, fanOut bool) []string {
	var out []string
	switch {
	case receivers > 0 && fanOut:
		out = append(out, fmt.Sprintf("%d receiver", receivers))
	case receivers > 0:
		out = append(out, "the receiver")
	}
	if senders > 0 {
		out = append(out, fmt.Sprintf("%d sender", senders))
	}
	return out
}

// checkReceivers describes each receiver of a work queue or broadcast
// region: a broadcast receiver's cursor and how far behind the senders it
// is, a work-queue receiver's claim and count. It is a note when a
// receiver is dead or holds the senders back, else ok.
func (d *doctor) checkReceivers(s *regionSnap) {
	lr, _ := s.liveRoles()
	what := "work queue"
	if s.Broadcast {
		what = "broadcast"
	}
	lvl := levelOK
	var parts []string
	for _, r := range s.Receivers {
		var b strings.Builder
		fmt.Fprintf(&b, "entry %d", r.Entry)
		switch {
		case s.Broadcast && !r.Joined && !r.Alive:
			b.WriteString(" left")
		case s.Broadcast && r.LagOK:
			fmt.Fprintf(&b, " at %d (%d behind", r.Position, r.Lag)
			if !r.Alive {
				b.WriteString(", dead")
				lvl = levelNote
				if r.Joined && !s.DropOldest {
					b.WriteString(", still joined: it holds the senders back until one of them finds it dead")
				}
			}
			if r.Alive && !s.DropOldest && r.Lag >= s.Capacity {
				b.WriteString(", a whole ring: senders wait for it")
				lvl = levelNote
			}
			b.WriteString(")")
		case s.Broadcast:
			fmt.Fprintf(&b, " at %d, past the tail (%d): impossible", r.Position, s.Sent)
			lvl = levelNote
		case r.Holding:
			fmt.Fprintf(&b, " holds position %d, received %d", r.Position, r.Received)
		default:
			fmt.Fprintf(&b, " received %d", r.Received)
		}
		if !s.Broadcast && !r.Alive {
			b.WriteString(" (dead")
			if r.Holding {
				b.WriteString(": a live receiver rescues the value it held")
			}
			b.WriteString(")")
			lvl = levelNote
		}
		parts = append(parts, b.String())
	}
	policy := ""
	if s.Broadcast {
		policy = " (" + s.Overflow + ")"
	}
	list := "none has joined yet"
	if len(parts) > 0 {
		list = strings.Join(parts, "; ")
	}
	d.add(lvl, "receivers", "", "%s: %s, %d sender%s, %d of %d receivers alive%s: %s.", s.Name, what,
		s.Producers, ifThen(s.Producers == 1, "", "s"), lr, s.Consumers, policy, list)
}

// checkBells lists doorbell pairs in /dev/mqueue whose region is gone.
func (d *doctor) checkBells(names []string, prefix string) {
	if _, _, _, ok := mountOf(mqueueDir); !ok {
		return
	}
	orphans, err := orphanBells()
	if err != nil {
		d.add(levelNote, "doorbells", "", "cannot list %s: %v.", mqueueDir, err)
		return
	}
	var mine []string
	for _, o := range orphans {
		if inScope(o, names, prefix) {
			mine = append(mine, o)
		}
	}
	if len(mine) == 0 {
		d.add(levelOK, "doorbells", "", "no doorbell queues left behind by removed regions.")
		return
	}
	fix := "shmchan rm -stale"
	if prefix != "" {
		fix += " -prefix " + prefix
	}
	d.add(levelProblem, "doorbells", fix+".", "doorbell queues without their region, which make a new Create of that name fail: %s.", strings.Join(bellList(mine), ", "))
}

func inScope(name string, names []string, prefix string) bool {
	if len(names) == 0 {
		return strings.HasPrefix(name, prefix)
	}
	for _, n := range names {
		if strings.TrimPrefix(strings.TrimPrefix(n, shmDir+"/"), "/") == name {
			return true
		}
	}
	return false
}

func bellList(regions []string) []string {
	var out []string
	for _, r := range regions {
		out = append(out, "/"+r+".rx", "/"+r+".tx")
	}
	return out
}
