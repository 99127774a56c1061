package mq

// Test-only hooks and the queue-name registry shared by the internal and the
// external (mq_test) tests of this package. Identifiers exported here exist
// only in the test binary.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

var nameCounter atomic.Uint64

// NamePrefix is the name prefix of every queue this test process creates.
func NamePrefix() string { return fmt.Sprintf("shmchan-test-%d-", os.Getpid()) }

// Track records queue names that TestMain must find gone at the end
// (testutil.TrackQueue, which this package's in-package tests cannot
// import: TestMain sets it).
var Track = func(names ...string) {}

// TrackName records a queue name that TestMain must find gone at the end.
func TrackName(name string) { Track(name) }

// NewName returns a fresh queue name ("/shmchan-test-<pid>-<n>"), tracks it,
// and unlinks the queue when the test ends, pass or fail.
func NewName(tb testing.TB) string {
	tb.Helper()
	name := "/" + NamePrefix() + fmt.Sprint(nameCounter.Add(1))
	TrackName(name)
	tb.Cleanup(func() {
		if err := Unlink(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			tb.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// IsPolled reports whether q's descriptor is registered with the runtime
// poller: only then do deadlines work on its *os.File.
func IsPolled(q *Queue) bool { return q.f.SetReadDeadline(time.Time{}) == nil }

// KernelNonblock reports the O_NONBLOCK flag of q's open file description,
// as fcntl(F_GETFL) sees it.
func KernelNonblock(q *Queue) (bool, error) {
	fl, err := unix.FcntlInt(uintptr(q.fd), unix.F_GETFL, 0)
	return fl&unix.O_NONBLOCK != 0, err
}

func TestABILayout(t *testing.T) {
	switch runtime.GOARCH {
	case "amd64", "arm64":
	default:
		t.Skipf("layout table written for amd64 and arm64, not %s", runtime.GOARCH)
	}
	var a mqAttr
	var s sigevent
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"sizeof(struct mq_attr)", unsafe.Sizeof(a), 64},
		{"offsetof(mq_flags)", unsafe.Offsetof(a.flags), 0},
		{"offsetof(mq_maxmsg)", unsafe.Offsetof(a.maxMsg), 8},
		{"offsetof(mq_msgsize)", unsafe.Offsetof(a.msgSize), 16},
		{"offsetof(mq_curmsgs)", unsafe.Offsetof(a.curMsgs), 24},
		{"offsetof(__reserved)", unsafe.Offsetof(a.reserved), 32},
		{"sizeof(struct sigevent)", unsafe.Sizeof(s), 64},
		{"alignof(struct sigevent)", unsafe.Alignof(s), 8},
		{"offsetof(sigev_value)", unsafe.Offsetof(s.value), 0},
		{"offsetof(sigev_signo)", unsafe.Offsetof(s.signo), 8},
		{"offsetof(sigev_notify)", unsafe.Offsetof(s.notify), 12},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
}

// TestGetattrRoundTrip checks the mq_attr layout against the kernel itself:
// the sizes asked for at creation come back from mq_getattr in their fields.
func TestGetattrRoundTrip(t *testing.T) {
	name := NewName(t)
	q, err := Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &Attr{MaxMsg: 3, MsgSize: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.TrySend([]byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	var a mqAttr
	if e := sysGetSetAttr(q.fd, nil, &a); e != 0 {
		t.Fatal(e)
	}
	want := mqAttr{flags: unix.O_NONBLOCK, maxMsg: 3, msgSize: 40, curMsgs: 1}
	if a != want {
		t.Errorf("mq_getattr = %+v, want %+v", a, want)
	}
}
