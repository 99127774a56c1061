package bench

// An SVG chart of a run, drawn by hand (no dependency): values per second
// per transport and size as grouped bars on a log scale, with min..max
// whiskers, and the 16-byte round trips as horizontal bars (p50) with a
// mark at p99, also on a log scale.

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

var colors = map[string]string{
	"shm-futex": "#1f5fa8", "shm-spin": "#4a9fe0", "shm-mqwait": "#9ecae1",
	"posix-mq": "#d62728", "pipe": "#ff7f0e", "unix": "#c9559e",
	"shm-batch": "#2ca02c", "pipe-batch": "#ffbb78", "unix-batch": "#f2b6d8",
	"shm-inplace": "#17becf",
	"gochan":      "#8c564b", "bare-ring": "#7f7f7f", "copy": "#bcbd22",
}

func color(key string) string {
	if c, ok := colors[key]; ok {
		return c
	}
	switch {
	case strings.HasPrefix(key, "rt-shm"):
		return "#1f5fa8"
	case key == "rt-cacheline" || key == "rt-futex-raw":
		return "#7f7f7f"
	case key == "rt-gochan":
		return "#8c564b"
	}
	return "#e6550d"
}

// decades returns the powers of ten around [lo, hi].
func decades(lo, hi float64) (float64, float64) {
	a := math.Pow(10, math.Floor(math.Log10(lo)))
	b := math.Pow(10, math.Ceil(math.Log10(hi)))
	if b <= a {
		b = a * 10
	}
	return a, b
}

// decadeLabel names a power of ten: 100, 1k, 10M; or, for
// nanoseconds, 100ns, 1µs, 1ms.
func decadeLabel(v float64, ns bool) string {
	if ns {
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%gms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%gµs", v/1e3)
		}
		return fmt.Sprintf("%gns", v)
	}
	for _, u := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.f {
			return fmt.Sprintf("%g%s", v/u.f, u.s)
		}
	}
	return fmt.Sprintf("%g", v)
}

func writeChart(path string, r *results) error {
	return os.WriteFile(path, []byte(chartSVG(r)), 0o644)
}

func chartSVG(r *results) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	// Which throughput rows have something to draw.
	var rows []*row
	lo, hi := math.Inf(1), 0.0
	for _, row := range allRows() {
		if row.section == sectionLatency || row.section == sectionFanOut {
			continue
		}
		has := false
		for _, size := range r.cfg.Sizes {
			if c := r.cell(row.key, size); c != nil && c.na == "" {
				if s := c.rate(); s != nil {
					has = true
					lo, hi = math.Min(lo, s.Min), math.Max(hi, s.Max)
				}
			}
		}
		if has {
			rows = append(rows, row)
		}
	}
	var lats []*cell
	llo, lhi := math.Inf(1), 0.0
	for _, row := range allRows() {
		if row.section != sectionLatency {
			continue
		}
		if c := r.cell(row.key, 16); c != nil && len(c.runs) > 0 {
			lats = append(lats, c)
			llo, lhi = math.Min(llo, c.lat(0).Median), math.Max(lhi, c.lat(2).Median)
		}
	}

	const (
		left, top, plotH = 70, 60, 360
		barW, gap        = 9, 26
		legendW          = 270
		rowH             = 20
		latLabelW        = 290
		latPlotW         = 560
	)
	groupW := len(rows)*barW + gap
	plotW := max(len(r.cfg.Sizes)*groupW, 300)
	width := max(left+plotW+legendW, latLabelW+latPlotW+120)
	latTop := top + plotH + 90
	height := latTop + 40 + len(lats)*rowH + 50
	if len(lats) == 0 {
		height = top + plotH + 70
	}
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	m := r.machine
	p(`<text x="%d" y="22" font-size="15" font-weight="bold">shmchan bench: values per second, two processes (log scale)</text>`+"\n", left)
	p(`<text x="%d" y="40" fill="#555">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("%s, %d CPUs, %s; median of %d runs, whiskers min..max; load %s", m.CPU, m.CPUs, m.Go, r.cfg.Runs, m.LoadStart)))

	if len(rows) > 0 {
		ylo, yhi := decades(lo, hi)
		y := func(v float64) float64 {
			return top + plotH - plotH*(math.Log10(v)-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo))
		}
		for d := ylo; d <= yhi*1.001; d *= 10 {
			p(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+plotW, y(d), y(d))
			p(`<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y(d)+4, decadeLabel(d, false))
		}
		p(`<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle" fill="#555">values/s</text>`+"\n", top+plotH/2, top+plotH/2)
		for gi, size := range r.cfg.Sizes {
			gx := left + gi*groupW + gap/2
			p(`<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", gx+len(rows)*barW/2, top+plotH+18, sizeName(size))
			for ri, row := range rows {
				c := r.cell(row.key, size)
				if c == nil || c.na != "" {
					continue
				}
				s := c.rate()
				if s == nil {
					continue
				}
				x := float64(gx + ri*barW)
				p(`<rect x="%.1f" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
					x, y(s.Median), barW-1, math.Max(0, y(ylo)-y(s.Median)), color(row.key),
					html.EscapeString(fmt.Sprintf("%s, %s: %s/s (%s)", row.name, sizeName(size), si(s.Median), span(s.Min, s.Max))))
				cx := x + float64(barW-1)/2
				p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black" stroke-width="1"/>`+"\n", cx, cx, y(s.Min), y(s.Max))
			}
		}
		p(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n", left, left+plotW, top+plotH, top+plotH)
		lx := left + plotW + 16
		for i, row := range rows {
			ly := top + i*18
			p(`<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, ly, color(row.key))
			p(`<text x="%d" y="%d">%s</text>`+"\n", lx+18, ly+10, html.EscapeString(row.name))
		}
	}

	if len(lats) > 0 {
		xlo, xhi := decades(llo, lhi)
		x0 := latLabelW
		x := func(ns float64) float64 {
			v := math.Min(math.Max(ns, xlo), xhi)
			return float64(x0) + latPlotW*(math.Log10(v)-math.Log10(xlo))/(math.Log10(xhi)-math.Log10(xlo))
		}
		p(`<text x="%d" y="%d" font-size="15" font-weight="bold">16-byte round trip (log scale): bar p50, tick p99</text>`+"\n", left, latTop-12)
		plotTop := latTop + 10
		plotBottom := plotTop + len(lats)*rowH
		for d := xlo; d <= xhi*1.001; d *= 10 {
			p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>`+"\n", x(d), x(d), plotTop, plotBottom)
			p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(d), plotBottom+16, decadeLabel(d, true))
		}
		for i, c := range lats {
			yy := plotTop + i*rowH
			p50, p99 := c.lat(0).Median, c.lat(2).Median
			p(`<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0-8, yy+14, html.EscapeString(c.row.name))
			p(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
				x0, yy+3, x(p50)-float64(x0), rowH-6, color(c.row.key),
				html.EscapeString(fmt.Sprintf("%s: p50 %s, p99 %s", c.row.name, micros(p50), micros(p99))))
			p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black" stroke-width="2"/>`+"\n", x(p99), x(p99), yy+1, yy+rowH-1)
		}
		p(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n", x0, x0, plotTop, plotBottom)
	}
	p("</svg>\n")
	return b.String()
}
