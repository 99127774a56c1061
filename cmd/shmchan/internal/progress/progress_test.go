package progress

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the master, and the slave end that
// a program would have as its terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func TestTerminal(t *testing.T) {
	master, slave := openPTY(t)
	if !IsTerminal(slave) {
		t.Fatal("a pty slave is not a terminal")
	}
	l := New(slave)
	if !l.On() {
		t.Fatal("line is off on a terminal")
	}
	l.SetInterval(time.Hour)
	l.Update("first %d", 1)
	l.Update("dropped: within the interval")
	l.Set("x")
	l.Done()
	// The tty turns \n into \r\n on output.
	want := "\rfirst 1\rx      \rx\r\n"
	got := make([]byte, 0, 64)
	buf := make([]byte, 64)
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(want) {
		n, err := master.Read(buf)
		if err != nil {
			t.Fatalf("read %q so far: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Errorf("terminal got %q, want %q", got, want)
	}
}

func TestSilentOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, out := range []*os.File{f, w} {
		if IsTerminal(out) {
			t.Fatalf("%s is a terminal", out.Name())
		}
		l := New(out)
		l.Set("nothing")
		l.Update("nothing")
		l.Clear()
		l.Done()
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("wrote %d bytes to a file", st.Size())
	}
	w.Close()
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("wrote %q to a pipe", b)
	}
	if IsTerminal(nil) {
		t.Error("nil is a terminal")
	}
}

func TestClearAndFormat(t *testing.T) {
	var b strings.Builder
	l := To(&b, true)
	l.Set("abc")
	l.Clear()
	l.Clear()
	if b.String() != "\rabc\r   \r" {
		t.Errorf("Clear: %q", b.String())
	}
	if got := Rate(12345, "values", 2*time.Second); got != "12.3k values  6.2k/s  0:02" {
		t.Errorf("Rate: %q", got)
	}
	if got := Clock(3723 * time.Second); got != "1:02:03" {
		t.Errorf("Clock: %q", got)
	}
	if got := Count(4_560_000); got != "4.56M" {
		t.Errorf("Count: %q", got)
	}
}
