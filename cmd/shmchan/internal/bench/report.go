package bench

// The report on stdout: the throughput tables, the shmchan rows' system
// calls and allocations, the round trips, the notes and the targets.

import (
	"fmt"
	"io"
	"strings"
)

var sectionTitles = map[string]string{
	sectionSingle:  "one value per call (shmchan Sender.Send/Receiver.Recv, mq_send/mq_receive, write/read)",
	sectionBatch:   "batched (values per call: %s)",
	sectionInPlace: "in place (SendFunc/RecvFunc: written and read in the slot)",
	sectionRef:     "references",
}

func printReport(w io.Writer, r *results) {
	m := r.machine
	virt := ""
	if m.Virtual {
		virt = ", virtual machine"
	}
	fmt.Fprintf(w, "shmchan bench: %s, %d CPUs%s, Linux %s, %s %s, GOMAXPROCS %d\n", m.CPU, m.CPUs, virt, m.Kernel, m.Go, m.Arch, m.GOMAXPROCS)
	cut := ""
	if r.cut > 0 {
		cut = fmt.Sprintf(" (of %d planned: time limit)", r.cut)
	}
	fmt.Fprintf(w, "%d runs%s, rows interleaved, %v per throughput measurement; load average %s at start, %s at end; %.0fs in all\n",
		r.cfg.Runs, cut, r.cfg.Budget, m.LoadStart, r.loadEnd, r.elapsed.Seconds())
	fmt.Fprintf(w, "Every value checked on receipt (sequence, middle and last words; every %dth in full). Sender and receiver are separate processes except where marked in-process.\n", fullEvery)

	notes := map[string]int{}
	var noteList []string
	na := func(reason string) string {
		n, ok := notes[reason]
		if !ok {
			noteList = append(noteList, reason)
			n = len(noteList)
			notes[reason] = n
		}
		return fmt.Sprintf("n/a [%d]", n)
	}
	sizes := r.cfg.Sizes
	header := []string{""}
	for _, s := range sizes {
		header = append(header, sizeName(s))
	}
	var batches []string
	for _, s := range sizes {
		_, b := geometry(s)
		batches = append(batches, fmt.Sprint(b))
	}

	// Throughput: msg/s with ranges, then MB/s.
	for _, view := range []string{"msg/s", "MB/s"} {
		fmt.Fprintln(w)
		if view == "msg/s" {
			fmt.Fprintf(w, "Throughput, values per second: median (min..max) of %d runs\n", r.cfg.Runs)
		} else {
			fmt.Fprintln(w, "Throughput, bytes per second (median; 1 MB = 10^6 bytes)")
		}
		rows := [][]string{header}
		section := ""
		for _, row := range allRows() {
			if row.section == sectionLatency || row.section == sectionFanOut {
				continue
			}
			line := []string{"  " + row.name}
			any := false
			for _, size := range sizes {
				c := r.cell(row.key, size)
				switch {
				case c == nil:
					line = append(line, "-")
				case c.na != "":
					line = append(line, na(c.na))
					any = true
				default:
					any = true
					s := c.rate()
					if s == nil {
						line = append(line, "-")
					} else if view == "msg/s" {
						line = append(line, fmt.Sprintf("%s (%s)", si(s.Median), span(s.Min, s.Max)))
					} else {
						line = append(line, bandwidth(s.Median*float64(size)))
					}
				}
			}
			if !any {
				continue
			}
			if row.section != section {
				section = row.section
				title := sectionTitles[section]
				if section == sectionBatch {
					title = fmt.Sprintf(title, strings.Join(batches, ", "))
				}
				rows = append(rows, []string{title})
			}
			rows = append(rows, line)
		}
		printTable(w, rows)
	}

	// System calls and allocations of the shmchan rows.
	fmt.Fprintln(w)
	fmt.Fprintln(w, "shmchan, per value (median): wait system calls (wake-ups + sleeps, both processes) / heap allocations (receiving process)")
	rows := [][]string{header}
	for _, row := range allRows() {
		if !row.shm || row.section == sectionLatency || row.section == sectionFanOut {
			continue
		}
		line := []string{"  " + row.name}
		any := false
		for _, size := range sizes {
			c := r.cell(row.key, size)
			if c == nil || c.na != "" || len(c.runs) == 0 {
				line = append(line, "-")
				continue
			}
			any = true
			sc, al := c.syscalls(), c.allocs()
			text := "-"
			if sc != nil && al != nil {
				text = perValue(sc.Median) + " / " + perValue(al.Median)
			}
			line = append(line, text)
		}
		if any {
			rows = append(rows, line)
		}
	}
	printTable(w, rows)

	printFanOut(w, r)

	// Latency.
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Round trip of a 16-byte value (ping, echo): median of %d runs, p50 with min..max\n", r.cfg.Runs)
	rows = [][]string{{"", "p50", "p90", "p99", "p99.9", "syscalls/rt", "allocs/rt"}}
	for _, row := range allRows() {
		if row.section != sectionLatency {
			continue
		}
		c := r.cell(row.key, 16)
		if c == nil || len(c.runs) == 0 {
			continue
		}
		p50 := c.lat(0)
		line := []string{"  " + row.name, fmt.Sprintf("%s (%s..%s)", micros(p50.Median), strings.TrimSuffix(micros(p50.Min), "µs"), micros(p50.Max))}
		for i := 1; i < 4; i++ {
			line = append(line, micros(c.lat(i).Median))
		}
		for _, s := range []*summary{c.syscalls(), c.allocs()} {
			if s == nil {
				line = append(line, "-")
			} else {
				line = append(line, perValue(s.Median))
			}
		}
		rows = append(rows, line)
	}
	printTable(w, rows)

	if len(noteList) > 0 {
		fmt.Fprintln(w)
		for i, n := range noteList {
			fmt.Fprintf(w, "[%d] %s\n", i+1, n)
		}
	}

	// Targets.
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Targets (issues 5 and 12): the ratio of the medians above, and of the best runs (highest rate, lowest time) in brackets")
	rows = [][]string{{"", "median", "(best)", "target", "verdict", ""}}
	unsteady := 0
	for _, t := range r.targets {
		line := []string{"  " + t.Name}
		if !t.Measured {
			rows = append(rows, append(line, "not measured", "", "", "", ""))
			continue
		}
		cmp := map[string]string{">=": "≥", "<=": "≤", "<": "<"}[t.Cmp]
		detail := t.Detail
		if t.Spread > unsteadySpread {
			detail += fmt.Sprintf("; UNSTEADY: runs %s× apart", sig3(t.Spread))
			unsteady++
		}
		rows = append(rows, append(line, formatTarget(t.Value, t.Unit), "("+formatTarget(t.Best, t.Unit)+")",
			cmp+" "+formatTarget(t.Target, t.Unit), verdict(t), detail))
	}
	printTable(w, rows)
	if unsteady > 0 {
		fmt.Fprintf(w, "UNSTEADY: the runs of a cell in that ratio differ by more than %d×; the machine disturbed it, measure again on a quieter one.\n", unsteadySpread)
	}
	met, best := 0, 0
	for _, t := range r.targets {
		if t.Met {
			met++
		}
		if t.BestMet {
			best++
		}
	}
	fmt.Fprintf(w, "%d of %d targets met on the medians, %d on the best runs", met, len(r.targets), best)
	if l := firstLoad(r.machine.LoadStart); l > float64(r.machine.CPUs)/2 {
		fmt.Fprintf(w, "; the machine was loaded (load average %.1f on %d CPUs), so take the medians as a floor", l, r.machine.CPUs)
	}
	fmt.Fprintln(w)
}

// printFanOut prints the fan-out and many-sender rows, each with its
// ratio to the row it is compared with.
func printFanOut(w io.Writer, r *results) {
	rows := [][]string{{"", "values/s", "÷ baseline", "", "wait syscalls/value"}}
	group := ""
	for _, row := range allRows() {
		if row.section != sectionFanOut {
			continue
		}
		c := r.cell(row.key, 16)
		if c == nil {
			continue
		}
		if row.group != group {
			group = row.group
			rows = append(rows, []string{group})
		}
		line := []string{"  " + row.name, "-", "", "", "-"}
		if s := c.rate(); s != nil {
			line[1] = fmt.Sprintf("%s (%s)", si(s.Median), span(s.Min, s.Max))
			if b := r.cell(row.base, 16); b != nil {
				if bs := b.rate(); bs != nil && bs.Median > 0 {
					line[2], line[3] = sig3(s.Median/bs.Median)+"×", baseName(row.base)
				}
			}
		}
		if sc := c.syscalls(); sc != nil {
			line[4] = perValue(sc.Median)
		}
		rows = append(rows, line)
	}
	if len(rows) == 1 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Fan-out and many senders: 16-byte values, one per call, every side a process; values per second, median (min..max) of %d runs\n", r.cfg.Runs)
	printTable(w, rows)
}

// baseName is the name of row key, for "vs the ...".
func baseName(key string) string {
	for _, row := range allRows() {
		if row.key == key {
			return row.name
		}
	}
	return key
}

// printTable prints rows of cells in columns: the first left-aligned, the
// others right-aligned. A row with one cell is a heading.
func printTable(w io.Writer, rows [][]string) {
	var width []int
	for _, r := range rows {
		if len(r) == 1 {
			continue
		}
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		if len(r) == 1 {
			fmt.Fprintln(w, r[0])
			continue
		}
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("   " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func firstLoad(s string) float64 {
	var l float64
	fmt.Sscan(s, &l)
	return l
}

// verdict says whether a target was met, and if not by how much.
func verdict(t target) string {
	var v string
	switch {
	case t.Met:
		return "met"
	case t.Unit != "x":
		v = "MISSED"
	case t.Cmp == ">=":
		v = fmt.Sprintf("MISSED, %.0f%% short", 100*(1-t.Value/t.Target))
	case t.Value/t.Target >= 3:
		v = fmt.Sprintf("MISSED, %s× the limit", sig3(t.Value/t.Target))
	default:
		v = fmt.Sprintf("MISSED, %.0f%% over", 100*(t.Value/t.Target-1))
	}
	if t.BestMet {
		v += " (best runs: met)"
	}
	return v
}

func formatTarget(v float64, unit string) string {
	if unit == "x" {
		if v >= 10 {
			return fmt.Sprintf("%.0f×", v)
		}
		return fmt.Sprintf("%.2f×", v)
	}
	return perValue(v) + unit
}
