package mq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan/mq"
)

// hang is how long a test waits for something that should happen at once
// before declaring it stuck. It bounds failures only: no test asserts timing.
const hang = 5 * time.Second

// create makes a new queue for this test, closed and unlinked when it ends.
func create(t testing.TB, attr *mq.Attr) (string, *mq.Queue) {
	t.Helper()
	name := mq.NewName(t)
	q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, attr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return name, q
}

// open opens another handle on name, closed when the test ends.
func open(t testing.TB, name string, flag int) *mq.Queue {
	t.Helper()
	q, err := mq.Open(name, flag, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

type result struct {
	n    int
	prio uint
	msg  string
	err  error
}

// receiveAsync runs q.Receive in a goroutine.
func receiveAsync(ctx context.Context, q *mq.Queue) <-chan result {
	ch := make(chan result, 1)
	go func() {
		buf := make([]byte, q.MsgSize())
		n, prio, err := q.Receive(ctx, buf)
		ch <- result{n, prio, string(buf[:n]), err}
	}()
	return ch
}

// sendAsync runs q.Send in a goroutine.
func sendAsync(ctx context.Context, q *mq.Queue, msg string) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- q.Send(ctx, []byte(msg), 0) }()
	return ch
}

func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hang):
		t.Fatalf("still blocked after %v", hang)
		panic("unreachable")
	}
}

// stillBlocked checks that nothing arrives on ch for a short while.
func stillBlocked[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("returned while it should block: %+v", v)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestSendReceive(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 4, MsgSize: 32})
	if err := q.TrySend([]byte("hello"), 3); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(context.Background(), nil, 0); err != nil { // empty messages are fine
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	n, prio, err := q.TryReceive(buf)
	if err != nil || string(buf[:n]) != "hello" || prio != 3 {
		t.Fatalf("TryReceive = %d %q prio %d, %v", n, buf[:n], prio, err)
	}
	n, prio, err = q.Receive(context.Background(), buf)
	if err != nil || n != 0 || prio != 0 {
		t.Fatalf("Receive = %d prio %d, %v; want the empty message", n, prio, err)
	}
	if !strings.HasPrefix(q.Name(), "/shmchan-test-") {
		t.Errorf("Name() = %q", q.Name())
	}
}

func TestNameWithoutSlash(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 2, MsgSize: 8})
	bare := strings.TrimPrefix(name, "/")
	q2 := open(t, bare, os.O_RDWR)
	if q2.Name() != name {
		t.Errorf("Name() = %q, want %q", q2.Name(), name)
	}
	if err := q2.TrySend([]byte("via"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, _, err := q.TryReceive(buf); err != nil || string(buf[:n]) != "via" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	if _, err := mq.Open(bare, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("creating %q again: %v, want fs.ErrExist", bare, err)
	}
	if err := mq.Unlink(bare); err != nil {
		t.Fatal(err)
	}
	if err := mq.Unlink(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second unlink: %v, want fs.ErrNotExist", err)
	}
}

func TestInvalidNames(t *testing.T) {
	long := strings.Repeat("a", 256)
	for _, name := range []string{"", "/", ".", "..", "/.", "/..", "a/b", "/a/b", "//a", "a/", "a\x00b", long, "/" + long} {
		_, err := mq.Open(name, os.O_RDWR|os.O_CREATE, 0o600, nil)
		if !errors.Is(err, mq.ErrInvalidName) {
			t.Errorf("Open(%q) = %v, want ErrInvalidName", name, err)
		} else if !strings.HasPrefix(err.Error(), "mq: open ") {
			t.Errorf("Open(%q) error lacks context: %v", name, err)
		}
		if err := mq.Unlink(name); !errors.Is(err, mq.ErrInvalidName) {
			t.Errorf("Unlink(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	// The longest valid name: 255 bytes after the slash.
	prefix := mq.NewName(t)
	name := prefix + strings.Repeat("x", 256-len(prefix))
	mq.TrackName(name)
	q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &mq.Attr{MaxMsg: 1, MsgSize: 1})
	if err != nil {
		t.Fatalf("255-byte name: %v", err)
	}
	q.Close()
	if err := mq.Unlink(name); err != nil {
		t.Fatal(err)
	}
}

func TestExistNotExist(t *testing.T) {
	name, _ := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	_, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, nil)
	if !errors.Is(err, fs.ErrExist) || !strings.HasPrefix(err.Error(), "mq: open "+name+": ") {
		t.Errorf("O_EXCL on an existing queue: %v, want fs.ErrExist with context", err)
	}
	// O_CREATE without O_EXCL opens the existing queue and ignores attr.
	q := open(t, name, os.O_RDWR|os.O_CREATE)
	if q.MaxMsg() != 1 || q.MsgSize() != 8 {
		t.Errorf("existing queue reports %d x %d", q.MaxMsg(), q.MsgSize())
	}

	missing := mq.NewName(t)
	_, err = mq.Open(missing, os.O_RDONLY, 0, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "mq: open "+missing+": ") {
		t.Errorf("opening a missing queue: %v, want fs.ErrNotExist with context", err)
	}
	if err := mq.Unlink(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unlinking a missing queue: %v, want fs.ErrNotExist", err)
	}
}

func TestBadFlags(t *testing.T) {
	name := mq.NewName(t)
	for _, flag := range []int{os.O_RDWR | os.O_CREATE | os.O_TRUNC, os.O_RDWR | os.O_WRONLY | os.O_CREATE, os.O_RDWR | os.O_APPEND} {
		if _, err := mq.Open(name, flag, 0o600, nil); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("flag %#x: %v, want EINVAL", flag, err)
		}
	}
}

func TestAccessMode(t *testing.T) {
	name, _ := create(t, &mq.Attr{MaxMsg: 2, MsgSize: 8})
	r := open(t, name, os.O_RDONLY)
	w := open(t, name, os.O_WRONLY)
	if err := r.TrySend([]byte("x"), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("send on a read-only handle: %v, want EBADF", err)
	}
	if err := r.Send(context.Background(), []byte("x"), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("blocking send on a read-only handle: %v, want EBADF", err)
	}
	buf := make([]byte, 8)
	if _, _, err := w.TryReceive(buf); !errors.Is(err, syscall.EBADF) {
		t.Errorf("receive on a write-only handle: %v, want EBADF", err)
	}
	if _, _, err := w.Receive(context.Background(), buf); !errors.Is(err, syscall.EBADF) {
		t.Errorf("blocking receive on a write-only handle: %v, want EBADF", err)
	}
	if err := w.TrySend([]byte("ok"), 0); err != nil {
		t.Fatal(err)
	}
	if n, _, err := r.TryReceive(buf); err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestFullEmpty(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 2, MsgSize: 8})
	buf := make([]byte, 8)
	if _, _, err := q.TryReceive(buf); err != mq.ErrEmpty {
		t.Fatalf("TryReceive on an empty queue: %v, want ErrEmpty (bare)", err)
	}
	for i := range 2 {
		if err := q.TrySend([]byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.TrySend([]byte{2}, 0); err != mq.ErrFull {
		t.Fatalf("TrySend on a full queue: %v, want ErrFull (bare)", err)
	}
	for i := range 2 {
		if n, _, err := q.TryReceive(buf); err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("message %d: % x, %v", i, buf[:n], err)
		}
	}
	if _, _, err := q.TryReceive(buf); !errors.Is(err, mq.ErrEmpty) {
		t.Fatalf("after draining: %v, want ErrEmpty", err)
	}
}

func TestTooLarge(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 2, MsgSize: 8})
	for _, send := range []func([]byte) error{
		func(m []byte) error { return q.TrySend(m, 0) },
		func(m []byte) error { return q.Send(context.Background(), m, 0) },
	} {
		err := send(make([]byte, 9))
		if !errors.Is(err, mq.ErrTooLarge) || !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("9-byte message: %v, want ErrTooLarge", err)
		} else if want := "mq: send " + name + ": message of 9 bytes exceeds MsgSize 8"; err.Error() != want {
			t.Errorf("error text %q, want %q", err, want)
		}
		if err := send(make([]byte, 8)); err != nil {
			t.Errorf("8-byte message: %v", err)
		}
	}
}

func TestShortBuffer(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 2, MsgSize: 8})
	if err := q.TrySend([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	short := make([]byte, 7)
	if _, _, err := q.TryReceive(short); !errors.Is(err, mq.ErrShortBuffer) {
		t.Errorf("TryReceive with 7 bytes: %v, want ErrShortBuffer", err)
	}
	if _, _, err := q.Receive(context.Background(), short); !errors.Is(err, mq.ErrShortBuffer) {
		t.Errorf("Receive with 7 bytes: %v, want ErrShortBuffer", err)
	}
	if a, _ := q.Attr(); a.CurMsgs != 1 {
		t.Errorf("the message was consumed: CurMsgs %d", a.CurMsgs)
	}
}

func TestPriorityOrder(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 10, MsgSize: 16})
	sends := []struct {
		prio uint
		text string
	}{{0, "a0"}, {5, "b0"}, {5, "b1"}, {31, "c0"}, {0, "a1"}, {mq.PrioMax - 1, "top"}, {5, "b2"}, {0, "a2"}}
	for _, s := range sends {
		if err := q.TrySend([]byte(s.text), s.prio); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"32767:top", "31:c0", "5:b0", "5:b1", "5:b2", "0:a0", "0:a1", "0:a2"}
	tryReceiveAll(t, q, want)
	err := q.TrySend([]byte("x"), mq.PrioMax)
	if !errors.Is(err, mq.ErrInvalidPriority) || !strings.Contains(err.Error(), "32768") {
		t.Errorf("priority PrioMax: %v, want ErrInvalidPriority", err)
	}
	if err := q.Send(context.Background(), []byte("x"), 1<<40); !errors.Is(err, mq.ErrInvalidPriority) {
		t.Errorf("priority 1<<40: %v, want ErrInvalidPriority", err)
	}
}

func TestAttr(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 5, MsgSize: 100, CurMsgs: 99})
	a, err := q.Attr()
	if err != nil {
		t.Fatal(err)
	}
	if want := (mq.Attr{MaxMsg: 5, MsgSize: 100}); a != want {
		t.Errorf("Attr = %+v, want %+v", a, want)
	}
	for range 3 {
		if err := q.TrySend([]byte("m"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if a, _ = q.Attr(); a.CurMsgs != 3 {
		t.Errorf("CurMsgs = %d after 3 sends", a.CurMsgs)
	}
	if q.MaxMsg() != 5 || q.MsgSize() != 100 {
		t.Errorf("MaxMsg, MsgSize = %d, %d", q.MaxMsg(), q.MsgSize())
	}
}

func readSysctl(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/mqueue/" + name)
	if err != nil {
		t.Skipf("cannot read the mqueue sysctls: %v", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDefaultAttr(t *testing.T) {
	wantMax := min(readSysctl(t, "msg_default"), readSysctl(t, "msg_max"))
	wantSize := min(readSysctl(t, "msgsize_default"), readSysctl(t, "msgsize_max"))
	_, q := create(t, nil)
	if a, err := q.Attr(); err != nil || a.MaxMsg != wantMax || a.MsgSize != wantSize {
		t.Errorf("nil attr: %+v, %v; want %d x %d", a, err, wantMax, wantSize)
	}
	q.Close()
	_, q = create(t, &mq.Attr{MaxMsg: 2})
	if a, err := q.Attr(); err != nil || a.MaxMsg != 2 || a.MsgSize != wantSize {
		t.Errorf("MsgSize 0: %+v, %v; want 2 x %d", a, err, wantSize)
	}
	q.Close()
	_, q = create(t, &mq.Attr{MsgSize: 16})
	if a, err := q.Attr(); err != nil || a.MaxMsg != wantMax || a.MsgSize != 16 {
		t.Errorf("MaxMsg 0: %+v, %v; want %d x 16", a, err, wantMax)
	}
}

func TestInvalidAttr(t *testing.T) {
	name := mq.NewName(t)
	_, err := mq.Open(name, os.O_RDWR|os.O_CREATE, 0o600, &mq.Attr{MaxMsg: -1, MsgSize: 8})
	if !errors.Is(err, syscall.EINVAL) || errors.Is(err, mq.ErrLimit) || !strings.Contains(err.Error(), "must be positive") {
		t.Errorf("MaxMsg -1: %v", err)
	}
}

// TestLimits drives MaxMsg and MsgSize past /proc/sys/fs/mqueue/msg_max and
// msgsize_max. Those limits bind only processes without CAP_SYS_RESOURCE:
// if this one has it, the check runs in a helper process of another user.
func TestLimits(t *testing.T) {
	msgMax := readSysctl(t, "msg_max")
	msgSizeMax := readSysctl(t, "msgsize_max")
	cases := []struct {
		maxMsg, msgSize int64
		want            string
	}{
		{msgMax + 1, 16, fmt.Sprintf("MaxMsg %d exceeds /proc/sys/fs/mqueue/msg_max (%d)", msgMax+1, msgMax)},
		{1, msgSizeMax + 1, fmt.Sprintf("MsgSize %d exceeds /proc/sys/fs/mqueue/msgsize_max (%d)", msgSizeMax+1, msgSizeMax)},
	}
	for _, c := range cases {
		name := mq.NewName(t)
		q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &mq.Attr{MaxMsg: c.maxMsg, MsgSize: c.msgSize})
		switch {
		case err == nil:
			q.Close()
			if err := mq.Unlink(name); err != nil {
				t.Fatal(err)
			}
			if os.Geteuid() != 0 {
				t.Skip("this process may exceed the mqueue sysctls (CAP_SYS_RESOURCE) and cannot start another user's process")
			}
			t.Logf("%dx%d: allowed here (CAP_SYS_RESOURCE); checking as uid %d", c.maxMsg, c.msgSize, otherUID)
		case !errors.Is(err, mq.ErrLimit) || !errors.Is(err, syscall.EINVAL):
			t.Errorf("%dx%d: %v, want ErrLimit", c.maxMsg, c.msgSize, err)
		case err.Error() != "mq: open "+name+": "+c.want:
			t.Errorf("error %q, want %q", err, "mq: open "+name+": "+c.want)
		}
		// As root, check from an unprivileged process too (it is the only
		// check when this process has CAP_SYS_RESOURCE).
		if os.Geteuid() == 0 {
			kv := helper{mode: "open", other: true, env: map[string]string{
				"SHMCHAN_MQ_NAME": name,
				"SHMCHAN_MQ_FLAG": strconv.Itoa(os.O_RDWR | os.O_CREATE | os.O_EXCL),
				"SHMCHAN_MQ_ATTR": fmt.Sprintf("%dx%d", c.maxMsg, c.msgSize),
			}}.run(t)
			if kv["uid"] != strconv.Itoa(otherUID) || kv["limit"] != "true" || kv["err"] != "mq: open "+name+": "+c.want {
				t.Errorf("helper as uid %s: %v", kv["uid"], kv)
			}
		}
	}

	// The kernel's hard limit binds everyone.
	name := mq.NewName(t)
	_, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &mq.Attr{MaxMsg: 65537, MsgSize: 1})
	if !errors.Is(err, mq.ErrLimit) || !strings.HasSuffix(err.Error(), "MaxMsg 65537 exceeds the kernel's hard limit HARD_MSGMAX (65536)") {
		t.Errorf("MaxMsg 65537: %v", err)
	}
}

// TestRlimitMsgqueue creates a queue in a helper process whose
// RLIMIT_MSGQUEUE is 1 byte (lowering it in this process would disturb the
// other tests).
func TestRlimitMsgqueue(t *testing.T) {
	name := mq.NewName(t)
	kv := helper{mode: "open", env: map[string]string{
		"SHMCHAN_MQ_NAME":   name,
		"SHMCHAN_MQ_FLAG":   strconv.Itoa(os.O_RDWR | os.O_CREATE | os.O_EXCL),
		"SHMCHAN_MQ_ATTR":   "2x16",
		"SHMCHAN_MQ_RLIMIT": "1",
	}}.run(t)
	if kv["limit"] != "true" || !strings.Contains(kv["err"], "RLIMIT_MSGQUEUE (1 bytes") ||
		!strings.Contains(kv["err"], "MaxMsg 2 × MsgSize 16") || kv["userlimit"] != "1" {
		t.Errorf("helper: %v", kv)
	}
}

// TestUserLimit: UserLimit agrees with what /proc/self/limits says of
// this process.
func TestUserLimit(t *testing.T) {
	got, err := mq.UserLimit()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Skipf("no /proc/self/limits: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Max msgqueue size")
		if !ok {
			continue
		}
		soft := strings.Fields(rest)[0]
		want := mq.Unlimited
		if soft != "unlimited" {
			if want, err = strconv.ParseUint(soft, 10, 64); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		}
		if got != want {
			t.Errorf("UserLimit = %d, /proc/self/limits says %s", got, soft)
		}
		return
	}
	t.Fatalf("no msgqueue line in /proc/self/limits:\n%s", b)
}

// TestPermission needs a process that the permission bits bind. Root
// (CAP_DAC_OVERRIDE) ignores them, so as root the queue is opened from a
// helper process running as another user; otherwise from this process.
func TestPermission(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	q.Close()
	if err := mq.Unlink(name); err != nil {
		t.Fatal(err)
	}
	q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o604, &mq.Attr{MaxMsg: 1, MsgSize: 8}) // others: read only
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if os.Geteuid() != 0 {
		// Make it inaccessible to ourselves too.
		_ = mq.Unlink(name)
		q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0, &mq.Attr{MaxMsg: 1, MsgSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		q.Close()
		_, err = mq.Open(name, os.O_RDONLY, 0, nil)
		if !errors.Is(err, fs.ErrPermission) || !strings.HasPrefix(err.Error(), "mq: open "+name+": ") {
			t.Errorf("mode 0 queue: %v, want fs.ErrPermission", err)
		}
		return
	}
	run := func(flag int) map[string]string {
		return helper{mode: "open", other: true, env: map[string]string{
			"SHMCHAN_MQ_NAME": name,
			"SHMCHAN_MQ_FLAG": strconv.Itoa(flag),
		}}.run(t)
	}
	if kv := run(os.O_RDONLY); kv["ok"] != "true" || kv["uid"] != strconv.Itoa(otherUID) {
		t.Errorf("other user reading a 0604 queue: %v", kv)
	}
	if kv := run(os.O_WRONLY); kv["permission"] != "true" || kv["err"] != "mq: open "+name+": permission denied" {
		t.Errorf("other user writing a 0604 queue: %v", kv)
	}
	if kv := run(os.O_RDWR | os.O_CREATE | os.O_EXCL); kv["exist"] != "true" {
		t.Errorf("other user creating it exclusively: %v", kv)
	}
}

func TestCancelReceive(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 2, MsgSize: 8})

	ctx, cancel := context.WithCancel(context.Background())
	ch := receiveAsync(ctx, q)
	stillBlocked(t, ch)
	cancel()
	if r := await(t, ch); r.err != ctx.Err() || r.err != context.Canceled {
		t.Fatalf("cancelled Receive: %v, want context.Canceled", r.err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if r := await(t, receiveAsync(ctx, q)); r.err != ctx.Err() || r.err != context.DeadlineExceeded {
		t.Fatalf("expired Receive: %v, want context.DeadlineExceeded", r.err)
	}

	// Nothing stale is left: a new Receive blocks, then gets a message.
	ch = receiveAsync(context.Background(), q)
	stillBlocked(t, ch)
	if err := q.TrySend([]byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != nil || r.msg != "after" {
		t.Fatalf("Receive after cancellations: %+v", r)
	}

	// A context that is already done wins over a queued message, which stays.
	if err := q.TrySend([]byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, _, err := q.Receive(done, make([]byte, 8)); err != context.Canceled {
		t.Fatalf("Receive with a done context: %v", err)
	}
	if a, _ := q.Attr(); a.CurMsgs != 1 {
		t.Fatalf("CurMsgs = %d, want the message kept", a.CurMsgs)
	}
}

func TestCancelSend(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	if err := q.TrySend([]byte("fill"), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := sendAsync(ctx, q, "x")
	stillBlocked(t, ch)
	cancel()
	if err := await(t, ch); err != ctx.Err() || err != context.Canceled {
		t.Fatalf("cancelled Send: %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := await(t, sendAsync(ctx, q, "x")); err != ctx.Err() || err != context.DeadlineExceeded {
		t.Fatalf("expired Send: %v, want context.DeadlineExceeded", err)
	}

	// No stale deadline: a new Send blocks until room is made.
	ch = sendAsync(context.Background(), q, "second")
	stillBlocked(t, ch)
	buf := make([]byte, 8)
	if n, _, err := q.TryReceive(buf); err != nil || string(buf[:n]) != "fill" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	if err := await(t, ch); err != nil {
		t.Fatal(err)
	}
	if n, _, err := q.TryReceive(buf); err != nil || string(buf[:n]) != "second" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

// TestConcurrentWaiters blocks several goroutines in Receive on one Queue,
// cancels some, and checks the others are neither woken nor stuck.
func TestConcurrentWaiters(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 4, MsgSize: 8})
	const n = 6
	var cancels [n]context.CancelFunc
	var chans [n]<-chan result
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		chans[i] = receiveAsync(ctx, q)
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < n; i += 2 {
		cancels[i]()
		if r := await(t, chans[i]); r.err != context.Canceled {
			t.Fatalf("waiter %d: %+v, want context.Canceled", i, r)
		}
	}
	for i := 1; i < n; i += 2 {
		stillBlocked(t, chans[i])
	}
	for i := 1; i < n; i += 2 {
		if err := q.TrySend([]byte{'0' + byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for i := 1; i < n; i += 2 {
		r := await(t, chans[i])
		if r.err != nil {
			t.Fatalf("waiter %d: %v", i, r.err)
		}
		got[r.msg] = true
	}
	if len(got) != n/2 {
		t.Fatalf("received %v", got)
	}
}

// TestStress runs blocking senders and receivers on small queues through
// several handles and checks every message arrives exactly once.
func TestStress(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 3, MsgSize: 8})
	q2 := open(t, name, os.O_RDWR)
	const senders, receivers, each = 4, 3, 300
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			h := []*mq.Queue{q, q2}[s%2]
			for i := range each {
				msg := []byte(fmt.Sprintf("%d-%d", s, i))
				var err error
				if i%3 == 0 {
					for err = h.TrySend(msg, uint(i%4)); err == mq.ErrFull; err = h.TrySend(msg, uint(i%4)) {
						time.Sleep(time.Microsecond)
					}
				} else {
					err = h.Send(ctx, msg, uint(i%4))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	total := 0
	stop, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var rwg sync.WaitGroup
	for r := range receivers {
		rwg.Go(func() {
			h := []*mq.Queue{q, q2}[r%2]
			buf := make([]byte, 8)
			for {
				n, _, err := h.Receive(stop, buf)
				if err != nil {
					if err != context.Canceled {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				seen[string(buf[:n])]++
				total++
				if total == senders*each {
					stopAll()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rwg.Wait()
	if total != senders*each || len(seen) != senders*each {
		t.Fatalf("received %d messages, %d distinct; want %d", total, len(seen), senders*each)
	}
}

func TestSetNonblock(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	buf := make([]byte, 8)
	if q.Nonblock() {
		t.Fatal("a new handle is in non-blocking mode")
	}
	if err := q.SetNonblock(true); err != nil {
		t.Fatal(err)
	}
	if !q.Nonblock() {
		t.Fatal("Attr does not report Nonblock")
	}
	if _, _, err := q.Receive(context.Background(), buf); err != mq.ErrEmpty {
		t.Fatalf("non-blocking Receive on an empty queue: %v", err)
	}
	if err := q.Send(context.Background(), []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(context.Background(), []byte("b"), 0); err != mq.ErrFull {
		t.Fatalf("non-blocking Send on a full queue: %v", err)
	}
	if err := q.SetNonblock(false); err != nil {
		t.Fatal(err)
	}
	if q.Nonblock() {
		t.Fatal("Nonblock still reported")
	}
	// The kernel's flag stays set: the poller depends on it.
	if on, err := mq.KernelNonblock(q); err != nil || !on {
		t.Fatalf("kernel O_NONBLOCK = %v, %v; want true", on, err)
	}
	// Blocking again, with nothing stale from the kicks above.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := q.Send(ctx, []byte("b"), 0); err != context.DeadlineExceeded {
		t.Fatalf("blocking Send on a full queue: %v", err)
	}
	if _, _, err := q.TryReceive(buf); err != nil {
		t.Fatal(err)
	}

	// Turning it on wakes blocked callers.
	ch := receiveAsync(context.Background(), q)
	stillBlocked(t, ch)
	if err := q.SetNonblock(true); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != mq.ErrEmpty {
		t.Fatalf("blocked Receive after SetNonblock(true): %v, want ErrEmpty", r.err)
	}
	if err := q.SetNonblock(false); err != nil {
		t.Fatal(err)
	}
	ch = receiveAsync(context.Background(), q)
	stillBlocked(t, ch)
	if err := q.TrySend([]byte("c"), 0); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != nil || r.msg != "c" {
		t.Fatalf("Receive: %+v", r)
	}

	// syscall.O_NONBLOCK in Open's flag starts in non-blocking mode.
	q2, err := mq.Open(name, os.O_RDWR|syscall.O_NONBLOCK, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if !q2.Nonblock() {
		t.Error("O_NONBLOCK handle does not report Nonblock")
	}
	if _, _, err := q2.Receive(context.Background(), buf); err != mq.ErrEmpty {
		t.Errorf("Receive on an O_NONBLOCK handle: %v", err)
	}
}

func TestClose(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	_, full := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	if err := full.TrySend([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	rch := receiveAsync(context.Background(), q)
	sch := sendAsync(context.Background(), full, "y")
	stillBlocked(t, rch)
	stillBlocked(t, sch)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := full.Close(); err != nil {
		t.Fatal(err)
	}
	if r := await(t, rch); !errors.Is(r.err, os.ErrClosed) {
		t.Errorf("Receive blocked across Close: %v, want os.ErrClosed", r.err)
	}
	if err := await(t, sch); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Send blocked across Close: %v, want os.ErrClosed", err)
	}
	buf := make([]byte, 8)
	ctx := context.Background()
	for what, err := range map[string]error{
		"TrySend":     q.TrySend([]byte("x"), 0),
		"Send":        q.Send(ctx, []byte("x"), 0),
		"TryReceive":  func() error { _, _, err := q.TryReceive(buf); return err }(),
		"Receive":     func() error { _, _, err := q.Receive(ctx, buf); return err }(),
		"Attr":        func() error { _, err := q.Attr(); return err }(),
		"SetNonblock": q.SetNonblock(true),
		"Notify":      q.Notify(syscall.SIGUSR1),
		"StopNotify":  q.StopNotify(),
		"Close":       q.Close(),
	} {
		if !errors.Is(err, os.ErrClosed) || !strings.HasPrefix(err.Error(), "mq: ") {
			t.Errorf("%s after Close: %v, want os.ErrClosed", what, err)
		}
	}
}

// TestParksGoroutines blocks many Receives at once and checks they do not
// each hold an OS thread, as they would inside a blocking mq_receive.
func TestParksGoroutines(t *testing.T) {
	const n = 32
	before := threads(t)
	var chans []<-chan result
	var queues []*mq.Queue
	for range n {
		_, q := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 1})
		queues = append(queues, q)
		chans = append(chans, receiveAsync(context.Background(), q))
	}
	time.Sleep(100 * time.Millisecond)
	during := threads(t)
	for i, ch := range chans {
		select {
		case r := <-ch:
			t.Fatalf("Receive %d returned on an empty queue: %+v", i, r)
		default:
		}
	}
	for _, q := range queues {
		if err := q.TrySend([]byte{1}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range chans {
		if r := await(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if during-before >= n/2 {
		t.Errorf("%d blocked Receives took %d OS threads (%d -> %d)", n, during-before, before, during)
	}
	t.Logf("threads: %d before, %d with %d goroutines blocked in Receive", before, during, n)
}

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Skip("no Threads line in /proc/self/status")
	return 0
}

func TestPolled(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 1})
	if !mq.IsPolled(q) {
		t.Fatal("the descriptor is not registered with the runtime poller")
	}
}

func TestZeroAllocs(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 2, MsgSize: 64})
	ctx := context.Background()
	cases := map[string]func(){
		"TrySend+TryReceive": func() {
			var msg [16]byte
			var buf [64]byte
			if err := q.TrySend(msg[:], 1); err != nil {
				panic(err)
			}
			if n, _, err := q.TryReceive(buf[:]); err != nil || n != 16 {
				panic(err)
			}
		},
		"Send+Receive (ready)": func() {
			var msg [16]byte
			var buf [64]byte
			if err := q.Send(ctx, msg[:], 1); err != nil {
				panic(err)
			}
			if _, _, err := q.Receive(ctx, buf[:]); err != nil {
				panic(err)
			}
		},
		"TryReceive (empty)": func() {
			var buf [64]byte
			if _, _, err := q.TryReceive(buf[:]); err != mq.ErrEmpty {
				panic(err)
			}
		},
		"TrySend (full)": func() {
			var msg [1]byte
			if err := q.TrySend(msg[:], 0); err != nil && err != mq.ErrFull {
				panic(err)
			}
		},
	}
	for _, name := range []string{"TrySend+TryReceive", "Send+Receive (ready)", "TryReceive (empty)", "TrySend (full)"} {
		if got := testing.AllocsPerRun(200, cases[name]); got != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, got)
		}
	}
}

func TestNotify(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 4, MsgSize: 8})
	other := open(t, name, os.O_RDWR)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	expectSignal := func(want bool) {
		t.Helper()
		select {
		case s := <-sigs:
			if !want {
				t.Fatalf("unexpected %v", s)
			}
		case <-time.After(map[bool]time.Duration{true: hang, false: 100 * time.Millisecond}[want]):
			if want {
				t.Fatal("no signal")
			}
		}
	}
	buf := make([]byte, 8)

	if err := q.Notify(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	// One registration per queue: a second handle, even in this process, is refused.
	err := other.Notify(syscall.SIGUSR1)
	if !errors.Is(err, mq.ErrNotifyBusy) || !errors.Is(err, syscall.EBUSY) || !strings.HasPrefix(err.Error(), "mq: notify "+name) {
		t.Fatalf("second registration: %v, want ErrNotifyBusy", err)
	}
	// So is another process.
	if kv := (helper{mode: "notify", env: map[string]string{"SHMCHAN_MQ_NAME": name}}).run(t); kv["busy"] != "true" {
		t.Fatalf("registration from another process: %v", kv)
	}

	if err := other.TrySend([]byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	expectSignal(true)
	// One-shot: the next message into an empty queue is not signalled.
	if _, _, err := q.TryReceive(buf); err != nil {
		t.Fatal(err)
	}
	if err := other.TrySend([]byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	expectSignal(false)
	if _, _, err := q.TryReceive(buf); err != nil {
		t.Fatal(err)
	}

	// The registration is free again; the other handle takes it, then drops it.
	if err := other.Notify(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := other.StopNotify(); err != nil {
		t.Fatal(err)
	}
	if err := q.TrySend([]byte("3"), 0); err != nil {
		t.Fatal(err)
	}
	expectSignal(false)
	if _, _, err := q.TryReceive(buf); err != nil {
		t.Fatal(err)
	}
	if err := q.StopNotify(); err != nil { // nothing registered: fine
		t.Fatal(err)
	}

	// Only a message into an empty queue notifies.
	if err := q.TrySend([]byte("4"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Notify(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := q.TrySend([]byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	expectSignal(false)
	if err := q.Close(); err != nil { // closing the registering handle removes the registration
		t.Fatal(err)
	}
	if err := other.Notify(syscall.SIGUSR1); err != nil {
		t.Fatalf("after the registering handle closed: %v", err)
	}
	if err := other.StopNotify(); err != nil {
		t.Fatal(err)
	}

	for _, sig := range []syscall.Signal{0, -1, 65} {
		if err := other.Notify(sig); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Notify(%d): %v, want EINVAL", sig, err)
		}
	}
}

func TestCrossProcessPriority(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 10, MsgSize: 16})
	helper{mode: "send", env: map[string]string{
		"SHMCHAN_MQ_NAME": name,
		"SHMCHAN_MQ_MSGS": "1:a1,7:b1,1:a2,0:z1,7:b2,300:top,1:a3",
	}}.run(t)
	want := []string{"300:top", "7:b1", "7:b2", "1:a1", "1:a2", "1:a3", "0:z1"}
	tryReceiveAll(t, q, want)
	if _, _, err := q.TryReceive(make([]byte, 16)); err != mq.ErrEmpty {
		t.Fatalf("extra message: %v", err)
	}
}

// TestCrossProcessWake blocks this process in Receive (and in Send) and
// wakes it from a helper process.
func TestCrossProcessWake(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 16})
	start := func(mode string, env map[string]string) (*bytes.Buffer, <-chan error, func()) {
		env["SHMCHAN_MQ_NAME"] = name
		env["SHMCHAN_MQ_CUE"] = "1"
		env["SHMCHAN_MQ_DELAY"] = "50ms"
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := helper{mode: mode, env: env, stdin: pr}.command(ctx, t)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pr.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); cancel() }()
		return &out, done, func() { pw.Write([]byte("go\n")); pw.Close() }
	}

	_, done, cue := start("send", map[string]string{"SHMCHAN_MQ_MSGS": "9:ding"})
	ch := receiveAsync(context.Background(), q)
	cue()
	if r := await(t, ch); r.err != nil || r.msg != "ding" || r.prio != 9 {
		t.Fatalf("Receive woken by another process: %+v", r)
	}
	if err := await(t, done); err != nil {
		t.Fatal(err)
	}

	if err := q.TrySend([]byte("first"), 0); err != nil {
		t.Fatal(err)
	}
	out, done, cue := start("recv", map[string]string{"SHMCHAN_MQ_COUNT": "2"})
	sch := sendAsync(context.Background(), q, "second")
	cue()
	if err := await(t, sch); err != nil {
		t.Fatalf("Send woken by another process: %v", err)
	}
	if err := await(t, done); err != nil {
		t.Fatal(err)
	}
	if kv := parseKV(out.String()); kv["msg0"] != "0:first" || kv["msg1"] != "0:second" {
		t.Fatalf("helper received %v", kv)
	}
}

// TestCancelStorm mixes receives that time out after a millisecond or two
// with a steady trickle of messages: no message may be lost to a cancelled
// Receive, and no deadline left behind may break a later one.
func TestCancelStorm(t *testing.T) {
	_, q := create(t, &mq.Attr{MaxMsg: 4, MsgSize: 8})
	const msgs, receivers = 300, 4
	var got sync.Map
	var wg sync.WaitGroup
	for r := range receivers {
		wg.Go(func() {
			buf := make([]byte, 8)
			idle := 0
			for idle < 100 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+r%2)*time.Millisecond)
				n, _, err := q.Receive(ctx, buf)
				cancel()
				switch {
				case err == nil:
					if _, dup := got.LoadOrStore(string(buf[:n]), true); dup {
						t.Errorf("message %q received twice", buf[:n])
					}
					idle = 0
				case err == context.DeadlineExceeded:
					idle++
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range msgs {
		if err := q.Send(context.Background(), []byte(strconv.Itoa(i)), 0); err != nil {
			t.Fatal(err)
		}
		if i%8 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	wg.Wait()
	count := 0
	got.Range(func(any, any) bool { count++; return true })
	if a, _ := q.Attr(); count+int(a.CurMsgs) != msgs {
		t.Fatalf("received %d, %d still queued, sent %d", count, a.CurMsgs, msgs)
	}
	// And a plain blocking Receive still works.
	ch := receiveAsync(context.Background(), q)
	if a, _ := q.Attr(); a.CurMsgs == 0 {
		if err := q.TrySend([]byte("last"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if r := await(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
}

// TestPingPong passes a message back and forth between two goroutines
// blocked in Receive, many times: every wake-up must get through.
func TestPingPong(t *testing.T) {
	_, ping := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	_, pong := create(t, &mq.Attr{MaxMsg: 1, MsgSize: 8})
	const rounds = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 8)
		for range rounds {
			n, prio, err := ping.Receive(context.Background(), buf)
			if err == nil {
				err = pong.Send(ctx, buf[:n], prio)
			}
			if err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, 8)
	for i := range rounds {
		if err := ping.Send(ctx, []byte{byte(i)}, uint(i%3)); err != nil {
			t.Fatal(err)
		}
		n, prio, err := pong.Receive(ctx, buf)
		if err != nil || n != 1 || buf[0] != byte(i) || prio != uint(i%3) {
			t.Fatalf("round %d: % x prio %d, %v", i, buf[:n], prio, err)
		}
	}
	if err := await(t, errc); err != nil {
		t.Fatal(err)
	}
}

// tryReceiveAll receives len(want) messages of up to 16 bytes without
// waiting and checks each against want ("prio:text").
func tryReceiveAll(t *testing.T, q *mq.Queue, want []string) {
	t.Helper()
	buf := make([]byte, 16)
	for i, w := range want {
		n, prio, err := q.TryReceive(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%d:%s", prio, buf[:n]); got != w {
			t.Errorf("message %d = %s, want %s", i, got, w)
		}
	}
}
