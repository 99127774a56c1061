package bench

// The number formatting every table, the chart and the progress lines
// share: rates, sizes, durations, per-value counts.

import (
	"fmt"
	"strings"
)

// si formats a rate with three significant digits and a unit prefix.
func si(v float64) string {
	for _, u := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.f {
			return sig3(v/u.f) + u.s
		}
	}
	return sig3(v)
}

func sig3(x float64) string {
	switch {
	case x >= 99.95:
		return fmt.Sprintf("%.0f", x)
	case x >= 9.995:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// span formats min..max, with the unit once when both share it.
func span(lo, hi float64) string {
	a, b := si(lo), si(hi)
	if len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] && strings.ContainsAny(a[len(a)-1:], "kMG") {
		a = a[:len(a)-1]
	}
	return a + ".." + b
}

func bandwidth(bps float64) string {
	if bps >= 1e9 {
		return sig3(bps/1e9) + " GB/s"
	}
	return sig3(bps/1e6) + " MB/s"
}

// micros formats nanoseconds as microseconds.
func micros(ns float64) string {
	us := ns / 1000
	switch {
	case us >= 100:
		return fmt.Sprintf("%.0fµs", us)
	case us >= 10:
		return fmt.Sprintf("%.1fµs", us)
	}
	return fmt.Sprintf("%.2fµs", us)
}

func perValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 0.0001:
		return "<0.0001"
	case v < 1:
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func joinPerValue(vs []float64) string {
	var s []string
	for _, v := range vs {
		s = append(s, perValue(v))
	}
	return strings.Join(s, " ")
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
