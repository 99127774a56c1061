package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is the least time between two redraws by Update.
const DefaultInterval = 200 * time.Millisecond

// Line is a progress line. Its methods are safe for concurrent use; on a
// Line that is off (not a terminal) they do nothing.
type Line struct {
	mu       sync.Mutex
	w        io.Writer
	on       bool
	interval time.Duration
	last     time.Time // of the last redraw
	width    int       // of the text drawn last, to blank what is left of it
	drawn    bool
}

// New returns a line drawn on f if f is a terminal, and a silent one
// otherwise.
func New(f *os.File) *Line {
	return &Line{w: f, on: IsTerminal(f), interval: DefaultInterval}
}

// To returns a line drawn on w, on or off as asked (for tests, and for
// callers that decide for themselves).
func To(w io.Writer, on bool) *Line {
	return &Line{w: w, on: on, interval: DefaultInterval}
}

// On reports whether the line is drawn.
func (l *Line) On() bool { return l != nil && l.on }

// SetInterval changes the least time between redraws by Update.
func (l *Line) SetInterval(d time.Duration) {
	l.mu.Lock()
	l.interval = d
	l.mu.Unlock()
}

// Update redraws the line with the text, unless the last redraw was less
// than the interval ago. Only the first line of text is used.
func (l *Line) Update(format string, args ...any) {
	if !l.On() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); l.drawn && now.Sub(l.last) < l.interval {
		return
	}
	l.draw(fmt.Sprintf(format, args...))
}

// Set redraws the line now, whatever the interval.
func (l *Line) Set(format string, args ...any) {
	if !l.On() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draw(fmt.Sprintf(format, args...))
}

func (l *Line) draw(text string) {
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = text[:i]
	}
	pad := max(0, l.width-len(text))
	fmt.Fprintf(l.w, "\r%s%s", text, strings.Repeat(" ", pad))
	if pad > 0 {
		fmt.Fprintf(l.w, "\r%s", text)
	}
	l.width, l.last, l.drawn = len(text), time.Now(), true
}

// Clear blanks the line and puts the cursor back at its start, for output
// that should not follow the progress text.
func (l *Line) Clear() {
	if !l.On() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.width))
		l.width, l.drawn = 0, false
	}
}

// Done ends the line: the last text stays, and the cursor goes to the
// next line.
func (l *Line) Done() {
	if !l.On() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		fmt.Fprintln(l.w)
		l.width, l.drawn = 0, false
	}
}

// Rate formats "n what, rate/s, elapsed" the way every progress line of
// the command does: "12.3k values  4.56M/s  0:07".
func Rate(n uint64, what string, elapsed time.Duration) string {
	r := "-"
	if s := elapsed.Seconds(); s > 0 {
		r = Count(float64(n)/s) + "/s"
	}
	return fmt.Sprintf("%s %s  %s  %s", Count(float64(n)), what, r, Clock(elapsed))
}

// Count prints a number with k, M, G suffixes: 950, 12.3k, 4.56M.
func Count(v float64) string {
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

// Clock prints a duration as m:ss, or h:mm:ss from an hour on.
func Clock(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
