package region

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/ring"
	"github.com/shmchan/shmchan/shm"
)

// testName returns a fresh region name; the region and its doorbells are
// removed when the test ends, pass or fail.
func testName(t *testing.T) string { return testutil.Name(t) }

// TestMain checks that the tests leaked nothing (testutil.Main).
func TestMain(m *testing.M) {
	testutil.Main(m, testutil.Config{
		Prefix: "shmchan-test",
		Bells: func(name string) []string {
			b := BellNames(name)
			return b[:]
		},
		Remove: func(_ testing.TB, name string) {
			os.RemoveAll(filepath.Join(shm.Dir, name))
			for _, b := range BellNames(name) {
				mq.Unlink(b)
			}
		},
	})
}

// testHeader is a small region's header: capacity 8, 16-byte values.
func testHeader(t *testing.T, mode layout.Mode, wait layout.Wait, producers uint32) layout.Header {
	t.Helper()
	h := layout.Header{
		Mode: mode, Wait: wait, Capacity: 8, MaxMsg: 16, Producers: producers,
		Flags: layout.FlagRaw, Fingerprint: 0x0123456789abcdef, CodecName: "raw", TypeName: "test.value",
		CreatorPID: uint32(os.Getpid()), CreatorUID: uint32(os.Geteuid()), Created: time.Now().UnixNano(),
	}
	if err := h.Geometry(); err != nil {
		t.Fatal(err)
	}
	return h
}

// makeRegion creates and (if publish) publishes a region, and closes the
// creator's handle when the test ends.
func makeRegion(t *testing.T, name string, h layout.Header, publish bool) *Region {
	t.Helper()
	g, err := Create(name, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if publish {
		if err := g.Publish(); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// attach opens name as the library does and gives the handle's ring.
func attach(t *testing.T, name string) (*Region, *ring.Ring) {
	t.Helper()
	g, err := Open(name, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rb, sb := g.Doorbells()
	r, err := ring.New(g.Mem(), g.Header(), ring.Config{RecvBell: rb, SendBell: sb})
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	return g, r
}

func inspect(t *testing.T, name string) Snapshot {
	t.Helper()
	s, err := Inspect(name)
	if err != nil {
		t.Fatalf("Inspect(%q): %v", name, err)
	}
	return s
}

func role(s Snapshot, i int) (Role, bool) {
	for _, r := range s.Roles {
		if r.Index == i {
			return r, true
		}
	}
	return Role{}, false
}

// A valid MPSC region with a live receiver, a live sender that sent 3
// values, and a sender whose handle closed (its lock dropped, its pid left).
func TestViewValid(t *testing.T) {
	name := testName(t)
	h := testHeader(t, layout.ModeMPSC, layout.WaitFutex, 4)
	makeRegion(t, name, h, true)
	me := uint32(os.Getpid())

	rg, rr := attach(t, name)
	defer rg.Close()
	if ok, err := rg.TakeRole(0); !ok || err != nil {
		t.Fatalf("TakeRole(0) = %v, %v", ok, err)
	}
	if _, err := rr.NewReceiver(Identity()); err != nil {
		t.Fatal(err)
	}
	sg, sr := attach(t, name)
	defer sg.Close()
	if ok, err := sg.TakeRole(1); !ok || err != nil {
		t.Fatalf("TakeRole(1) = %v, %v", ok, err)
	}
	snd, err := sr.NewSender(1, Identity())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		buf, err := snd.TryReserve()
		if err != nil {
			t.Fatal(err)
		}
		buf[0] = byte(i)
		snd.Commit(1)
	}
	dg, dr := attach(t, name)
	if ok, err := dg.TakeRole(2); !ok || err != nil {
		t.Fatalf("TakeRole(2) = %v, %v", ok, err)
	}
	if _, err := dr.NewSender(2, Identity()); err != nil {
		t.Fatal(err)
	}
	dg.Close() // the lock goes, the entry keeps its pid: a dead sender
	// A lock on entry 3 whose holder has not stamped the entry yet.
	bare, err := shm.Open(name, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if ok, err := bare.TryLock(layout.RoleLockBase + 3); !ok || err != nil {
		t.Fatalf("TryLock(3) = %v, %v", ok, err)
	}

	s := inspect(t, name)
	if !s.Valid() || !s.Ready || s.Err != nil {
		t.Fatalf("valid region: Valid %v, Ready %v, Err %v", s.Valid(), s.Ready, s.Err)
	}
	if s.Name != name || s.Path != filepath.Join(shm.Dir, name) || s.File.Size != int64(h.TotalSize) || s.File.Mode != shm.DefaultPerm {
		t.Errorf("file: %q %q %+v", s.Name, s.Path, s.File)
	}
	if s.Header.Checksum == 0 || s.Header != rg.Header() {
		t.Errorf("Header %+v, the library validated %+v", s.Header, rg.Header())
	}
	if d := s.Stored; d == nil || d.Magic != layout.Magic || d.Mode != layout.ModeMPSC || d.Producers != 4 ||
		d.TypeName != "test.value" || d.Checksum != d.Computed || d.Checksum != s.Header.Checksum {
		t.Errorf("Stored %+v", s.Stored)
	}
	if st := s.Stats; st == nil || st.Sent != 3 || st.Received != 0 || st.Closed {
		t.Errorf("Stats %+v, want 3 sent", s.Stats)
	}
	if !s.AnyHeld || len(s.Roles) != 4 || len(s.Bells) != 0 {
		t.Fatalf("AnyHeld %v, roles %+v, bells %+v", s.AnyHeld, s.Roles, s.Bells)
	}
	for i, want := range []bool{true, true, false} {
		r, ok := role(s, i)
		if !ok || r.PID != me || r.Alive != want || r.Since <= 0 || r.Sleeping() {
			t.Errorf("role %d: %+v (found %v), want pid %d, alive %v", i, r, ok, me, want)
		}
	}
	if r, ok := role(s, 3); !ok || r.PID != 0 || !r.Alive {
		t.Errorf("role 3 (locked, not stamped): %+v, found %v", r, ok)
	}
	if r, _ := role(s, 1); r.Sent != 3 {
		t.Errorf("sender entry 1 counts %d sent, want 3", r.Sent)
	}

	v, err := OpenView("/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Name() != name {
		t.Errorf("Name %q", v.Name())
	}
	held, err := v.Held(5)
	if err != nil || fmt.Sprint(held) != "[true true false true false]" {
		t.Errorf("Held(5) = %v, %v", held, err)
	}
	if _, err := v.Held(2 + layout.MaxProducers + layout.MaxConsumers); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Held beyond every entry: %v", err)
	}
	st, err := v.Stats(false)
	if err != nil || st != *s.Stats {
		t.Errorf("Stats = %+v, %v; the snapshot had %+v", st, err, *s.Stats)
	}
	if n, ok := Fill(st, h.Capacity); !ok || n != 3 {
		t.Errorf("Fill = %d, %v", n, ok)
	}
	if size, cut, err := v.Truncated(); size != int64(h.TotalSize) || cut || err != nil {
		t.Errorf("Truncated = %d, %v, %v", size, cut, err)
	}
	if ok, err := v.Linked(); !ok || err != nil {
		t.Errorf("Linked = %v, %v", ok, err)
	}
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.Linked(); ok || err != nil {
		t.Errorf("Linked after Unlink = %v, %v", ok, err)
	}
}

func TestFill(t *testing.T) {
	for _, c := range []struct {
		sent, received, capacity, n uint64
		ok                          bool
	}{
		{5, 2, 8, 3, true},
		{8, 0, 8, 8, true},
		{9, 0, 8, 0, false}, // more queued than fits
		{2, 5, 8, 0, false}, // head ahead of tail
		{0, 0, 8, 0, true},
	} {
		n, ok := Fill(ring.Stats{Sent: c.sent, Received: c.received}, c.capacity)
		if n != c.n || ok != c.ok {
			t.Errorf("Fill(sent %d, received %d, cap %d) = %d, %v", c.sent, c.received, c.capacity, n, ok)
		}
	}
}

// The waiting words are shown as stored, while Stats says what they mean.
func TestViewWaitWords(t *testing.T) {
	name := testName(t)
	g := makeRegion(t, name, testHeader(t, layout.ModeSPSC, layout.WaitFutex, 1), true)
	binary.LittleEndian.PutUint32(g.Mem()[layout.OffRecvWaiting:], 7)
	binary.LittleEndian.PutUint32(g.Mem()[layout.OffSendWaiters:], 9)
	s := inspect(t, name)
	if s.RecvWaitWord != 7 || s.SendWaitWord != 9 || s.Stats == nil || s.Stats.RecvWaiting != 1 || s.Stats.SendWaiters != 1 {
		t.Errorf("words %d %d, stats %+v", s.RecvWaitWord, s.SendWaitWord, s.Stats)
	}
}

func TestViewNotReady(t *testing.T) {
	name := testName(t)
	makeRegion(t, name, testHeader(t, layout.ModeSPSC, layout.WaitFutex, 1), false)
	s := inspect(t, name)
	if s.Valid() || s.Ready || !errors.Is(s.Err, ErrNotReady) || !errors.Is(s.Err, layout.ErrCorrupt) || s.Stored == nil || s.Stats == nil {
		t.Errorf("unpublished region: Valid %v, Ready %v, Err %v, Stored %v, Stats %v", s.Valid(), s.Ready, s.Err, s.Stored != nil, s.Stats != nil)
	}
}

// writeAt writes b at off into the region's file.
func writeAt(t *testing.T, name string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(shm.Dir, name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// reseal edits the stored header and gives it a matching checksum.
func reseal(t *testing.T, name string, edit func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shm.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	binary.LittleEndian.PutUint64(b[layout.OffChecksum:], layout.Checksum(b))
	writeAt(t, name, 0, b[:layout.HeaderSize])
}

func TestViewDamaged(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		what   string
		spoil  func(t *testing.T, name string)
		want   string // in Err
		stored bool   // the header could be decoded
		stats  bool   // the counters could be read
	}{
		{"checksum", func(t *testing.T, n string) { writeAt(t, n, layout.OffTypeName, []byte("X")) }, "header checksum", true, true},
		{"version", func(t *testing.T, n string) { writeAt(t, n, layout.OffVersion, []byte{9}) }, "layout version 9", true, true},
		{"mode", func(t *testing.T, n string) {
			reseal(t, n, func(b []byte) { le.PutUint32(b[layout.OffMode:], 7) })
		}, "mode 7", true, true},
		{"producers", func(t *testing.T, n string) {
			reseal(t, n, func(b []byte) { le.PutUint32(b[layout.OffProducers:], ^uint32(0)) })
		}, "4294967295 sender entries", true, true},
		{"short header", func(t *testing.T, n string) { truncate(t, n, 100) }, "shorter than the 256-byte header", false, false},
		{"no counters", func(t *testing.T, n string) { truncate(t, n, layout.OffSendSleeps+7) }, "header claims", true, false},
		{"counters", func(t *testing.T, n string) { truncate(t, n, layout.OffSendSleeps+8) }, "header claims", true, true},
		{"truncated", func(t *testing.T, n string) { truncate(t, n, 300) }, "file is 300 bytes, header claims", true, false},
	} {
		t.Run(c.what, func(t *testing.T) {
			name := testName(t)
			makeRegion(t, name, testHeader(t, layout.ModeSPSC, layout.WaitFutex, 1), true)
			c.spoil(t, name)
			s := inspect(t, name)
			if s.Valid() || !strings.Contains(fmt.Sprint(s.Err), c.want) {
				t.Errorf("Err %v, want %q", s.Err, c.want)
			}
			if !errors.Is(s.Err, layout.ErrCorrupt) && !errors.Is(s.Err, layout.ErrIncompatible) {
				t.Errorf("Err %v is neither ErrCorrupt nor ErrIncompatible", s.Err)
			}
			if (s.Stored != nil) != c.stored || (s.Stats != nil) != c.stats {
				t.Errorf("Stored %v, Stats %v; want %v, %v", s.Stored != nil, s.Stats != nil, c.stored, c.stats)
			}
			if s.Header != (layout.Header{}) || len(s.Bells) != 0 {
				t.Errorf("a damaged region has a validated header %+v or doorbells %+v", s.Header, s.Bells)
			}
		})
	}
}

func truncate(t *testing.T, name string, size int64) {
	t.Helper()
	if err := os.Truncate(filepath.Join(shm.Dir, name), size); err != nil {
		t.Fatal(err)
	}
}

// A damaged header still shows the pids of the entries its stored count
// claims, and any lock held beyond them.
func TestViewDamagedRoles(t *testing.T) {
	name := testName(t)
	makeRegion(t, name, testHeader(t, layout.ModeMPSC, layout.WaitFutex, 2), true)
	g, r := attach(t, name)
	defer g.Close()
	if ok, err := g.TakeRole(2); !ok || err != nil {
		t.Fatalf("TakeRole(2) = %v, %v", ok, err)
	}
	if _, err := r.NewSender(2, Identity()); err != nil {
		t.Fatal(err)
	}
	// A lock far beyond the entries, as a hostile or confused peer may hold.
	far, err := shm.Open(name, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	if ok, err := far.TryLock(layout.RoleLockBase + 100); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	writeAt(t, name, layout.OffTypeName, []byte("X")) // checksum broken

	s := inspect(t, name)
	if s.Valid() || !s.AnyHeld {
		t.Fatalf("Valid %v, AnyHeld %v", s.Valid(), s.AnyHeld)
	}
	if r, ok := role(s, 2); !ok || !r.Alive || r.PID != uint32(os.Getpid()) {
		t.Errorf("entry 2 of a damaged header: %+v, found %v", r, ok)
	}
	if r, ok := role(s, 100); !ok || !r.Alive || r.PID != 0 {
		t.Errorf("lock beyond the entries: %+v, found %v", r, ok)
	}
	if len(s.Roles) != 2 {
		t.Errorf("roles %+v, want entries 2 and 100", s.Roles)
	}
}

func TestViewNotRegion(t *testing.T) {
	dir := shm.Dir
	plain := testName(t)
	if err := os.WriteFile(filepath.Join(dir, plain), []byte("not a region at all, just some bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := testName(t)
	if err := os.WriteFile(filepath.Join(dir, empty), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := testName(t)
	if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{plain, empty, sub} {
		if _, err := Inspect(n); !errors.Is(err, ErrNotRegion) {
			t.Errorf("Inspect(%s): %v, want ErrNotRegion", n, err)
		}
	}
	if _, err := OpenView(sub); !errors.Is(err, shm.ErrNotRegular) {
		t.Errorf("OpenView of a directory: %v, want it to wrap shm.ErrNotRegular", err)
	}
	if _, err := Inspect(testName(t)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Inspect of an absent name: %v", err)
	}
}

// A file cut short under the View's mapping makes reads fault; the faults
// come back as errors.
func TestViewTruncatedUnderMapping(t *testing.T) {
	name := testName(t)
	makeRegion(t, name, testHeader(t, layout.ModeSPSC, layout.WaitFutex, 1), true)
	v, err := OpenView(name)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	truncate(t, name, 0)
	if size, cut, err := v.Truncated(); size != 0 || !cut || err != nil {
		t.Errorf("Truncated = %d, %v, %v", size, cut, err)
	}
	s, err := v.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if s.Valid() || !errors.Is(s.Err, layout.ErrCorrupt) || !strings.Contains(s.Err.Error(), "memory fault") {
		t.Errorf("Snapshot of a truncated mapping: %v", s.Err)
	}
	if _, err := v.Stats(true); !errors.Is(err, layout.ErrCorrupt) || !strings.Contains(err.Error(), "memory fault") {
		t.Errorf("Stats of a truncated mapping: %v", err)
	}
}

func TestViewDoorbells(t *testing.T) {
	name := testName(t)
	g := makeRegion(t, name, testHeader(t, layout.ModeSPSC, layout.WaitMQ, 1), true)
	rb, _ := g.Doorbells()
	rb.Ring()
	s := inspect(t, name)
	if !s.Valid() || len(s.Bells) != 2 {
		t.Fatalf("Valid %v (%v), bells %+v", s.Valid(), s.Err, s.Bells)
	}
	rx, tx := s.Bells[0], s.Bells[1]
	if rx.Name != "/"+name+".rx" || !rx.Exists || rx.Pending != 1 || rx.MaxMsg != 4 || rx.Err != nil {
		t.Errorf("receiver's doorbell %+v", rx)
	}
	if tx.Name != "/"+name+".tx" || !tx.Exists || tx.Pending != 0 || tx.Err != nil {
		t.Errorf("senders' doorbell %+v", tx)
	}
	if err := mq.Unlink(BellNames(name)[1]); err != nil {
		t.Fatal(err)
	}
	if s := inspect(t, name); len(s.Bells) != 2 || s.Bells[1].Exists {
		t.Errorf("a removed doorbell: %+v", s.Bells)
	}
}

// fanHeader is a small work-queue or broadcast header: 2 sender entries,
// 3 consumer entries.
func fanHeader(t *testing.T, mode layout.Mode, overflow layout.Overflow) layout.Header {
	t.Helper()
	h := layout.Header{
		Mode: mode, Wait: layout.WaitFutex, Capacity: 8, MaxMsg: 16, Producers: 2, Consumers: 3, Overflow: overflow,
		Flags: layout.FlagRaw | layout.FlagMulti, Fingerprint: 1, CodecName: "raw", TypeName: "test.value",
		CreatorPID: uint32(os.Getpid()), CreatorUID: uint32(os.Geteuid()), Created: time.Now().UnixNano(),
	}
	if err := h.Geometry(); err != nil {
		t.Fatal(err)
	}
	return h
}

// sendN commits n one-byte values through sender entry 1 of a new handle.
func sendN(t *testing.T, name string, n int) {
	t.Helper()
	g, r := attach(t, name)
	t.Cleanup(func() { g.Close() })
	if ok, err := g.TakeRole(1); !ok || err != nil {
		t.Fatalf("TakeRole(1) = %v, %v", ok, err)
	}
	s, err := r.NewSender(1, Identity())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		buf, err := s.TryReserve()
		if err != nil {
			t.Fatal(err)
		}
		buf[0] = byte(i)
		s.Commit(1)
	}
}

// consumer takes consumer entry k of name in a new handle (close it to
// let the entry's lock go).
func consumer(t *testing.T, name string, k int) (*Region, *ring.Receiver) {
	t.Helper()
	g, r := attach(t, name)
	hdr := g.Header()
	i := hdr.ConsumerEntry(k)
	if ok, err := g.TakeRole(i); !ok || err != nil {
		g.Close()
		t.Fatalf("TakeRole(%d) = %v, %v", i, ok, err)
	}
	c, err := r.NewConsumer(i, Identity())
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	return g, c
}

// A work queue: the claim head, a consumer that holds a position, one
// that received and holds none, one that died holding one.
func TestViewWorkQueue(t *testing.T) {
	name := testName(t)
	h := fanHeader(t, layout.ModeWorkQueue, layout.OverflowWait)
	makeRegion(t, name, h, true)
	sendN(t, name, 5)

	g0, c0 := consumer(t, name, 0)
	defer g0.Close()
	if _, err := c0.TryPeek(); err != nil { // holds position 0
		t.Fatal(err)
	}
	g1, c1 := consumer(t, name, 1)
	defer g1.Close()
	for range 2 { // receives 1 and 2, holds none
		if _, err := c1.TryPeek(); err != nil {
			t.Fatal(err)
		}
		c1.Release()
	}
	g2, c2 := consumer(t, name, 2)
	if _, err := c2.TryPeek(); err != nil { // holds position 3, then dies
		t.Fatal(err)
	}
	g2.Close()

	s := inspect(t, name)
	if !s.Valid() || s.ClaimHead != 4 || s.Lagged != 0 || s.Stats == nil || s.Stats.Sent != 5 || s.Stats.Received != 0 {
		t.Fatalf("Valid %v (%v), claim head %d, lagged %d, stats %+v", s.Valid(), s.Err, s.ClaimHead, s.Lagged, s.Stats)
	}
	for k, want := range []struct {
		alive    bool
		claim    uint64
		holds    bool
		received uint64
	}{{true, 0, true, 0}, {true, 0, false, 2}, {false, 3, true, 0}} {
		r, ok := role(s, h.ConsumerEntry(k))
		c, holds := r.Claim()
		if !ok || r.PID != uint32(os.Getpid()) || r.Alive != want.alive || holds != want.holds || c != want.claim || r.Sent != want.received {
			t.Errorf("consumer %d: %+v (found %v), claim %d %v; want %+v", k, r, ok, c, holds, want)
		}
	}
	if len(s.Roles) != 4 || !s.AnyHeld {
		t.Errorf("roles %+v, AnyHeld %v: want the sender and three consumers", s.Roles, s.AnyHeld)
	}

	v, err := OpenView(name)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	held, err := v.Held(h.Entries())
	if err != nil || fmt.Sprint(held) != "[false true false true true false]" {
		t.Errorf("Held(%d) = %v, %v", h.Entries(), held, err)
	}
	if _, err := v.Held(1 + layout.MaxProducers + layout.MaxConsumers); err != nil {
		t.Errorf("Held over every possible entry: %v", err)
	}
	if _, err := v.Held(2 + layout.MaxProducers + layout.MaxConsumers); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Held beyond every possible entry: %v", err)
	}
	if e, err := v.Entry(h.ConsumerEntry(0)); err != nil || e.ClaimLo != 0 || e.ClaimHi != 1 {
		t.Errorf("Entry(consumer 0) = %+v, %v", e, err)
	}
	if _, err := v.Entry(-1); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Entry(-1): %v", err)
	}
	if ch, lagged, err := v.FanOut(); ch != 4 || lagged != 0 || err != nil {
		t.Errorf("FanOut = %d, %d, %v", ch, lagged, err)
	}
}

// A broadcast: joined cursors, the lagged word, and a receiver that left.
func TestViewBroadcast(t *testing.T) {
	name := testName(t)
	h := fanHeader(t, layout.ModeBroadcast, layout.OverflowDrop)
	makeRegion(t, name, h, true)
	g0, c0 := consumer(t, name, 0) // joins at 0
	defer g0.Close()
	sendN(t, name, 3)
	g1, _ := consumer(t, name, 1) // joins at 3
	defer g1.Close()
	if _, err := c0.TryPeek(); err != nil {
		t.Fatal(err)
	}
	c0.Release() // cursor 1
	g2, c2 := consumer(t, name, 2)
	c2.Detach() // left: no longer joined, its pid cleared
	g2.Close()
	// A lagged count as DropOldest receivers add it up.
	binary.LittleEndian.PutUint64(g0.Mem()[layout.OffLagged:], 12)

	s := inspect(t, name)
	if !s.Valid() || s.Lagged != 12 || s.ClaimHead != 0 || s.Stats == nil || s.Stats.Sent != 3 {
		t.Fatalf("Valid %v (%v), lagged %d, claim head %d, stats %+v", s.Valid(), s.Err, s.Lagged, s.ClaimHead, s.Stats)
	}
	for k, want := range []struct {
		cursor, lag uint64
	}{{1, 2}, {3, 0}} {
		r, ok := role(s, h.ConsumerEntry(k))
		lag, lok := Lag(r.ClaimLo, s.Stats.Sent)
		if !ok || !r.Alive || !r.Joined() || r.ClaimLo != want.cursor || !lok || lag != want.lag {
			t.Errorf("consumer %d: %+v (found %v), lag %d %v; want cursor %d lag %d", k, r, ok, lag, lok, want.cursor, want.lag)
		}
	}
	if _, ok := role(s, h.ConsumerEntry(2)); ok {
		t.Errorf("a consumer that left is listed: %+v", s.Roles)
	}
	if _, ok := Lag(5, 3); ok {
		t.Errorf("Lag of a cursor ahead of the tail")
	}
	for _, e := range []ring.Entry{{ClaimLo: 4, ClaimHi: 4}, {ClaimLo: 4, ClaimHi: 6}, {ClaimLo: 5, ClaimHi: 4}} {
		if p, ok := WorkClaim(e); ok {
			t.Errorf("WorkClaim(%+v) = %d, true", e, p)
		}
	}
}
