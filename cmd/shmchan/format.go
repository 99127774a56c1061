package main

// Formatting helpers shared by the tools.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// humanBytes prints a size with K/M/G/T/P suffixes (powers of 1024).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10)
	}
	f := float64(n)
	for _, s := range []string{"K", "M", "G", "T"} {
		f /= unit
		if f < unit {
			if f < 10 {
				return fmt.Sprintf("%.1f%s", f, s)
			}
			return fmt.Sprintf("%.0f%s", f, s)
		}
	}
	return fmt.Sprintf("%.0fP", f/unit)
}

// humanCount prints a rate with k/M/G suffixes: 950, 12.3k, 4.56M.
func humanCount(v float64) string {
	switch {
	case v < 1000:
		return fmt.Sprintf("%.0f", v)
	case v < 1e6:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v < 1e9:
		return fmt.Sprintf("%.2fM", v/1e6)
	}
	return fmt.Sprintf("%.2fG", v/1e9)
}

// fmtTime prints Unix nanoseconds as a local time, "-" for none.
func fmtTime(ns int64) string {
	if ns <= 0 {
		return "-"
	}
	return time.Unix(0, ns).Format("2006-01-02 15:04:05.000")
}

// hex64 prints a 64-bit word as 16 hex digits.
func hex64(v uint64) string { return fmt.Sprintf("%016x", v) }

// printable replaces what is not UTF-8 in a string read from a region.
func printable(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// modeName names a header's mode as the tools show it: SPSC, MPSC,
// WORKQUEUE, BROADCAST, MODE(N).
func modeName(m layout.Mode) string { return strings.ToUpper(m.String()) }

// flagNames names a header's flags: "raw", "none", "unknown 0x..".
func flagNames(f layout.Flags) string {
	var names []string
	if f&layout.FlagRaw != 0 {
		names = append(names, "raw")
		f &^= layout.FlagRaw
	}
	if f&layout.FlagMulti != 0 {
		names = append(names, "multi-producer")
		f &^= layout.FlagMulti
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("unknown %#x", uint32(f)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string { return ifThen(b, "yes", "no") }

func ifThen(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func plural(n uint64, one, many string) string { return ifThen(n == 1, one, many) }
