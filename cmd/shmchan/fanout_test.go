package main

// Work-queue and broadcast regions for the tools' tests, made directly
// with internal/region and ring (each role through its own handle, so its
// lock is held by an open file description the tools can see).

import (
	"context"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/ring"
)

// fanRegion creates and publishes a work-queue or broadcast region of 16
// slots of 8-byte values; the creator's handle closes when the test ends.
func fanRegion(t *testing.T, name string, mode layout.Mode, overflow layout.Overflow, producers, consumers uint32) layout.Header {
	t.Helper()
	h := layout.Header{
		Mode: mode, Wait: layout.WaitFutex, Capacity: 16, MaxMsg: 8, Producers: producers, Consumers: consumers,
		Overflow: overflow, Flags: layout.FlagRaw | layout.FlagMulti, Fingerprint: 0x1122334455667788,
		CodecName: "raw", TypeName: "uint64",
		CreatorPID: uint32(os.Getpid()), CreatorUID: uint32(os.Geteuid()), Created: time.Now().UnixNano(),
	}
	if err := h.Geometry(); err != nil {
		t.Fatal(err)
	}
	g, err := region.Create(name, h, region.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if err := g.Publish(); err != nil {
		t.Fatal(err)
	}
	return g.Header()
}

// fanRole is one role of a fan-out region, on a handle of its own.
type fanRole struct {
	g *region.Region
	s *ring.Sender
	c *ring.Receiver
}

// fanJoin takes role entry i of name (a sender's or a consumer's) on a new
// handle, closed when the test ends unless closed before.
func fanJoin(t *testing.T, name string, i int) *fanRole {
	t.Helper()
	g, err := region.Open(name, region.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	r, err := ring.New(g.Mem(), g.Header(), ring.Config{Alive: g.Alive, StuckCheck: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := g.TakeRole(i); !ok || err != nil {
		t.Fatalf("TakeRole(%d) = %v, %v", i, ok, err)
	}
	f := &fanRole{g: g}
	h := g.Header()
	if i <= int(h.Producers) {
		f.s, err = r.NewSender(i, region.Identity())
	} else {
		f.c, err = r.NewConsumer(i, region.Identity())
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fanRole) send(t *testing.T, from, to uint64) {
	t.Helper()
	for v := from; v < to; v++ {
		b, err := f.s.TryReserve()
		if err != nil {
			t.Fatalf("send %d: %v", v, err)
		}
		binary.LittleEndian.PutUint64(b, v)
		f.s.Commit(8)
	}
}

// recv receives n values, expecting from, from+1, ...
func (f *fanRole) recv(t *testing.T, from uint64, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for k := range n {
		b, err := f.c.Peek(ctx)
		if err != nil {
			t.Fatalf("receive %d: %v", k, err)
		}
		if v := binary.LittleEndian.Uint64(b); v != from+uint64(k) {
			t.Fatalf("received %d, want %d", v, from+uint64(k))
		}
		f.c.Release()
	}
}

// hold peeks at one value without releasing it (a work-queue receiver
// then holds its position).
func (f *fanRole) hold(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := f.c.Peek(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b)
}

func receiverAt(s *regionSnap, entry int) (receiverSnap, bool) {
	for _, r := range s.Receivers {
		if r.Entry == entry {
			return r, true
		}
	}
	return receiverSnap{}, false
}

// broadcastScene: a WaitForSlowest broadcast region, one sender, three
// receiver entries: a fast receiver that took all 10 values, a slow one
// that took 4, and one that joined after 2 and died without leaving.
func broadcastScene(t *testing.T) (string, layout.Header) {
	name := newName(t)
	h := fanRegion(t, name, layout.ModeBroadcast, layout.OverflowWait, 1, 3)
	snd := fanJoin(t, name, 1)
	fast := fanJoin(t, name, h.ConsumerEntry(0))
	slow := fanJoin(t, name, h.ConsumerEntry(1))
	snd.send(t, 0, 2)
	dead := fanJoin(t, name, h.ConsumerEntry(2))
	snd.send(t, 2, 10)
	fast.recv(t, 0, 10)
	slow.recv(t, 0, 4)
	dead.g.Close() // no Detach: its cursor stays joined at 2
	return name, h
}

func TestSnapshotBroadcast(t *testing.T) {
	name, h := broadcastScene(t)
	s, err := snapshotOne(name)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Valid || s.Topology != "broadcast" || !s.Broadcast || s.DropOldest || s.Consumers != 3 || s.Sent != 10 {
		t.Fatalf("snapshot: valid %v (%v), topology %q, broadcast %v, drop %v, consumers %d, sent %d",
			s.Valid, s.Err, s.Topology, s.Broadcast, s.DropOldest, s.Consumers, s.Sent)
	}
	if len(s.Receivers) != 3 {
		t.Fatalf("receivers %+v, want the three consumer entries", s.Receivers)
	}
	for k, want := range []struct {
		pos, lag, received uint64
		alive              bool
	}{{10, 0, 10, true}, {4, 6, 4, true}, {2, 8, 0, false}} {
		e := h.ConsumerEntry(k)
		r, ok := receiverAt(s, e)
		if !ok || !r.PositionOK || !r.LagOK || !r.HaveReceived || !r.Joined || r.Holding ||
			r.Position != want.pos || r.Lag != want.lag || r.Received != want.received || r.Alive != want.alive || r.PID != uint32(os.Getpid()) {
			t.Errorf("entry %d: %+v, want position %d, lag %d, received %d, alive %v, joined", e, r, want.pos, want.lag, want.received, want.alive)
		}
	}
	if lr, ls := s.liveRoles(); lr != 2 || ls != 1 {
		t.Errorf("live roles: %d receivers, %d senders; want 2, 1", lr, ls)
	}
	if dr, ds := s.deadRoles(); dr != 1 || ds != 0 {
		t.Errorf("dead roles: %d receivers, %d senders; want 1, 0", dr, ds)
	}
}

// workQueueScene: one sender sent 5 values to a work queue of two
// receivers: one took and released 2, the other holds the third.
func workQueueScene(t *testing.T) (string, layout.Header) {
	name := newName(t)
	h := fanRegion(t, name, layout.ModeWorkQueue, 0, 1, 2)
	snd := fanJoin(t, name, 1)
	a := fanJoin(t, name, h.ConsumerEntry(0))
	b := fanJoin(t, name, h.ConsumerEntry(1))
	snd.send(t, 0, 5)
	a.recv(t, 0, 2)
	if v := b.hold(t); v != 2 {
		t.Fatalf("the second receiver holds %d, want 2", v)
	}
	return name, h
}

func TestSnapshotWorkQueue(t *testing.T) {
	name, h := workQueueScene(t)
	s, err := snapshotOne(name)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Valid || s.Topology != "workqueue" || s.Broadcast || s.Consumers != 2 || s.Sent != 5 || !s.FillOK || s.Fill != 3 {
		t.Fatalf("snapshot: valid %v (%v), topology %q, consumers %d, sent %d, fill %d (%v)",
			s.Valid, s.Err, s.Topology, s.Consumers, s.Sent, s.Fill, s.FillOK)
	}
	a, okA := receiverAt(s, h.ConsumerEntry(0))
	b, okB := receiverAt(s, h.ConsumerEntry(1))
	if !okA || a.Holding || a.PositionOK || a.LagOK || !a.HaveReceived || a.Received != 2 || !a.Alive {
		t.Errorf("first receiver %+v: want 2 received, nothing held, no lag", a)
	}
	if !okB || !b.Holding || !b.PositionOK || b.Position != 2 || b.LagOK || b.Received != 0 || !b.Alive {
		t.Errorf("second receiver %+v: want position 2 held, none received yet, no lag", b)
	}
	if lr, ls := s.liveRoles(); lr != 2 || ls != 1 {
		t.Errorf("live roles: %d receivers, %d senders; want 2, 1", lr, ls)
	}
}

func TestMetricsFanOut(t *testing.T) {
	bname, bh := broadcastScene(t)
	wname, wh := workQueueScene(t)
	fams := scrape(t, startExporter(t, "-prefix", namePrefix()))
	at := func(name string, e int) map[string]string {
		return map[string]string{"channel": name, "entry": itoa(e)}
	}
	for _, tc := range []struct {
		metric string
		labels map[string]string
		want   float64
		typ    dto.MetricType
	}{
		{"shmchan_receiver_lag", at(bname, bh.ConsumerEntry(0)), 0, dto.MetricType_GAUGE},
		{"shmchan_receiver_lag", at(bname, bh.ConsumerEntry(1)), 6, dto.MetricType_GAUGE},
		{"shmchan_receiver_lag", at(bname, bh.ConsumerEntry(2)), 8, dto.MetricType_GAUGE},
		{"shmchan_receiver_position", at(bname, bh.ConsumerEntry(1)), 4, dto.MetricType_GAUGE},
		{"shmchan_receiver_values_total", at(bname, bh.ConsumerEntry(0)), 10, dto.MetricType_COUNTER},
		{"shmchan_receiver_values_total", at(bname, bh.ConsumerEntry(1)), 4, dto.MetricType_COUNTER},
		{"shmchan_live_roles", map[string]string{"channel": bname, "role": "receiver"}, 2, dto.MetricType_GAUGE},
		{"shmchan_dead_roles", map[string]string{"channel": bname, "role": "receiver"}, 1, dto.MetricType_GAUGE},
		{"shmchan_channel_info", map[string]string{"channel": bname, "topology": "broadcast"}, 1, dto.MetricType_GAUGE},
		{"shmchan_receiver_position", at(wname, wh.ConsumerEntry(1)), 2, dto.MetricType_GAUGE},
		{"shmchan_receiver_values_total", at(wname, wh.ConsumerEntry(0)), 2, dto.MetricType_COUNTER},
		{"shmchan_fill", map[string]string{"channel": wname}, 3, dto.MetricType_GAUGE},
		{"shmchan_live_roles", map[string]string{"channel": wname, "role": "receiver"}, 2, dto.MetricType_GAUGE},
		{"shmchan_channel_info", map[string]string{"channel": wname, "topology": "workqueue"}, 1, dto.MetricType_GAUGE},
	} {
		v, typ, ok := metricValue(fams, tc.metric, tc.labels)
		if !ok || v != tc.want || typ != tc.typ {
			t.Errorf("%s%v = %v (%v, present %v), want %v (%v)", tc.metric, tc.labels, v, typ, ok, tc.want, tc.typ)
		}
	}
	// A work queue's receivers share one queue: no lag of their own, and
	// no position for one that holds nothing.
	for k := range 2 {
		if v, _, ok := metricValue(fams, "shmchan_receiver_lag", at(wname, wh.ConsumerEntry(k))); ok {
			t.Errorf("work-queue receiver %d has a lag (%v)", k, v)
		}
	}
	if _, _, ok := metricValue(fams, "shmchan_receiver_position", at(wname, wh.ConsumerEntry(0))); ok {
		t.Errorf("a work-queue receiver that holds nothing has a position")
	}
	// Entry 0 is nobody's in a fan-out region.
	if _, _, ok := metricValue(fams, "shmchan_receiver_lag", at(bname, 0)); ok {
		t.Errorf("a broadcast region has a receiver at entry 0")
	}
}

func TestDoctorFanOut(t *testing.T) {
	bname, bh := broadcastScene(t)
	wname, wh := workQueueScene(t)
	out, _, _ := tool(t, "doctor", bname, wname)
	t.Logf("doctor:\n%s", out)
	for _, want := range []string{
		bname + ": broadcast, 1 sender, 2 of 3 receivers alive",
		"entry " + itoa(bh.ConsumerEntry(1)) + " at 4 (6 behind)",
		"entry " + itoa(bh.ConsumerEntry(2)) + " at 2 (8 behind, dead, still joined",
		wname + ": work queue, 1 sender, 2 of 2 receivers alive",
		"entry " + itoa(wh.ConsumerEntry(1)) + " holds position 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor does not say %q:\n%s", want, out)
		}
	}
	if line := doctorLine(out, "note", "regions"); !strings.Contains(line, "died without letting go of 1 receiver role") {
		t.Errorf("doctor says nothing of the dead receiver:\n%s", out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
