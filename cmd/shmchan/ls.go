package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/shmchan/shmchan/shm"
)

const lsUsage = `usage: shmchan ls [-json]

Lists every shmchan region in /dev/shm: name, type (Go type name, codec
and type fingerprint), mode (SPSC, MPSC, WORKQUEUE, or BROADCAST with its
overflow policy: BROADCAST/wait-for-slowest, BROADCAST/drop-oldest),
capacity, fill (values queued now; for a broadcast, the backlog of the
slowest live receiver), size, owner and permission bits, state, and the
roles with their pids and whether each holder is alive (its role lock is
held). Many senders are numbered by entry (send#3). The receivers of a
work queue or broadcast are numbered among the receiver entries (recv#0,
recv#1, ...), with their positions: in a work queue the position a
receiver holds ("claim 17": claimed, not yet received) or "idle"; in a
broadcast its cursor (the next position it reads) and its lag (values
sent that it has still to read), or "left" once it stopped receiving.

Files in /dev/shm that are not shmchan regions are skipped. A region whose
header does not validate is listed with what is wrong with it; 'shmchan
stat NAME' tells more. Regions are only read, never written.

  -json   print a JSON array, one object per region (the fields of
          'shmchan stat -json')
`

func runLs(args []string) int {
	fset := flag.NewFlagSet("shmchan ls", flag.ContinueOnError)
	asJSON := fset.Bool("json", false, "print JSON")
	operands, ok, code := parseArgs(fset, args, lsUsage)
	if !ok {
		return code
	}
	if len(operands) > 0 {
		fmt.Fprintf(os.Stderr, "shmchan ls: unexpected argument %q\n%s", operands[0], lsUsage)
		return 2
	}
	regions, err := listRegions()
	if err != nil {
		errf("ls", "%v", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(regions); err != nil {
			errf("ls", "%v", err)
			return 1
		}
		return 0
	}
	printLs(regions)
	return 0
}

// listRegions inspects every regular file in /dev/shm and keeps the
// shmchan regions. Files that vanish meanwhile, cannot be opened, or have
// another magic are left out.
func listRegions() ([]*regionInfo, error) {
	names, err := shm.List(shmDir)
	if err != nil {
		return nil, err
	}
	attached := attachedPIDs()
	regions := []*regionInfo{}
	for _, name := range names {
		r, err := inspect(name)
		if err != nil {
			continue // gone, unreadable, or not a region: not ours to show
		}
		r.Attached = attached[r.Path]
		regions = append(regions, r)
	}
	return regions, nil
}

func printLs(regions []*regionInfo) {
	if len(regions) == 0 {
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tCODEC\tFINGERPRINT\tMODE\tCAP\tFILL\tSIZE\tOWNER\tPERM\tSTATE\tROLES")
	for _, r := range regions {
		typ, codec, fp, mode, capacity, fill := "?", "?", "?", "?", "?", "?"
		if r.Valid {
			h := r.hdr()
			typ, codec = orDash(h.TypeName), orDash(h.CodecName)
			fp = hex64(h.Fingerprint)
			mode = r.modeText()
			capacity = fmt.Sprint(h.Capacity)
			if r.Counters != nil {
				if n, ok := r.fill(); ok {
					fill = fmt.Sprint(n)
				} else {
					fill = "bad"
				}
			}
		}
		var roles []string
		for _, ro := range r.Roles {
			roles = append(roles, ro.short(r.multiSender()))
		}
		rolesText := strings.Join(roles, ", ")
		if rolesText == "" {
			rolesText = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Name, typ, codec, fp, mode, capacity, fill, humanBytes(r.Size),
			r.Owner, r.PermStr, state(r), rolesText)
	}
	tw.Flush()
	// Damaged regions: say what is wrong, after the table so that it stays
	// readable.
	for _, r := range regions {
		if r.Error != "" {
			fmt.Printf("%s: %s\n", r.Name, r.Error)
		}
	}
}
