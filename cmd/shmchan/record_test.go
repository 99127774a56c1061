package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/cmd/shmchan/internal/capture"
	"github.com/shmchan/shmchan/cmd/shmchan/internal/progress"
)

// bgTool is the built binary running in the background.
type bgTool struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     chan struct{}
	code     int
}

// startTool runs the binary without waiting for it; it is killed when the
// test ends if it is still running.
func startTool(t *testing.T, args ...string) *bgTool {
	t.Helper()
	b := &bgTool{cmd: exec.Command(binPath, args...), done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.err
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := b.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			b.code = ee.ExitCode()
		} else if err != nil {
			b.code = -1
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

// wait waits for the tool to exit and returns its output and exit code.
func (b *bgTool) wait(t *testing.T) (string, string, int) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("%v did not finish; stderr:\n%s", b.cmd.Args, b.err.String())
	}
	if s := b.err.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
		t.Fatalf("%v crashed:\n%s", b.cmd.Args, s)
	}
	return b.out.String(), b.err.String(), b.code
}

func recValue(i int) rec {
	return rec{Seq: uint64(i), At: int64(i) * 3, V: [4]uint32{uint32(i), uint32(i * 7), ^uint32(i), 42}}
}

// sendRecs sends values [from, to) in batches.
func sendRecs(t *testing.T, c *shmchan.Chan[rec], from, to int) {
	t.Helper()
	batch := make([]rec, 0, 512)
	for i := from; i < to; {
		batch = batch[:0]
		for ; i < to && len(batch) < cap(batch); i++ {
			batch = append(batch, recValue(i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.SendBatch(ctx, batch)
		cancel()
		if err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

// recvRecs receives n values and checks that they are values [0, n) in
// order, then (with wantClosed) that the channel is closed and drained.
func recvRecs(t *testing.T, c *shmchan.Chan[rec], n int, wantClosed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	buf := make([]rec, 512)
	for got := 0; got < n; {
		k, err := c.RecvBatch(ctx, buf[:min(len(buf), n-got)])
		if err != nil {
			t.Fatalf("receive after %d values: %v", got, err)
		}
		for _, v := range buf[:k] {
			if v != recValue(got) {
				t.Fatalf("value %d: got %+v, want %+v", got, v, recValue(got))
			}
			got++
		}
	}
	if wantClosed {
		if _, err := c.Recv(ctx); !errors.Is(err, shmchan.ErrClosed) {
			t.Fatalf("after %d values: %v, want ErrClosed", n, err)
		}
	}
}

// recordedFile records n values sent into a fresh channel and returns the
// file's path.
func recordedFile(t *testing.T, n int) string {
	t.Helper()
	name := newName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithCapacity(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := filepath.Join(t.TempDir(), "values.rec")
	rt := startTool(t, "record", "-consume", "-count", fmt.Sprint(n), name, file)
	sendRecs(t, c, 0, n+10) // 10 more than recorded: -count must stop at n
	out, errOut, code := rt.wait(t)
	want := fmt.Sprintf("recorded %d values ", n)
	if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, "count reached") {
		t.Fatalf("record: exit %d, out %q, err %q; want %q", code, out, errOut, want)
	}
	t.Logf("%s", strings.TrimSpace(out))
	if errOut != "" {
		t.Errorf("record wrote to stderr off a terminal: %q", errOut)
	}
	if l := c.Len(); l != 10 {
		t.Errorf("record -count %d left %d values in the channel, want 10", n, l)
	}
	return file
}

func TestRecordReplayRoundTrip(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	file := recordedFile(t, n)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := capture.Scan(f)
	f.Close()
	if err != nil || sum.Count != int64(n) || !sum.Header.Raw || sum.Header.ValueSize != 32 || sum.Header.Type != "main.rec" || sum.Header.Codec != "raw" {
		t.Fatalf("recording: %+v, %v", sum, err)
	}

	target := newName(t)
	c, err := shmchan.Create[rec](target, shmchan.WithCapacity(1024))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rp := startTool(t, "replay", "-rate", "max", "-close", file, target)
	recvRecs(t, c, n, true)
	out, errOut, code := rp.wait(t)
	t.Logf("%s", strings.TrimSpace(out))
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("replayed %d values from %s into %s in ", n, file, target)) || errOut != "" {
		t.Fatalf("replay: exit %d, out %q, err %q", code, out, errOut)
	}
}

// replayFails runs replay of file into a fresh channel of rec, which must
// fail with want in its error and send nothing.
func replayFails(t *testing.T, file, want string) {
	t.Helper()
	target := newName(t)
	c, err := shmchan.Create[rec](target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, errOut, code := tool(t, "replay", "-rate", "max", file, target)
	t.Logf("replay %s: %s", filepath.Base(file), strings.TrimSpace(errOut))
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("replay: exit %d, stderr %q, want 1 and %q", code, errOut, want)
	}
	if s := c.Stats(); s.Sent != 0 {
		t.Errorf("replay of a bad file sent %d values", s.Sent)
	}
}

func TestReplayDamaged(t *testing.T) {
	const n = 2000
	file := recordedFile(t, n)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, err := capture.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	hdr := r.HeaderSize()
	const recSize = 24 + 32
	if want := hdr + n*recSize + 24 + 8; int64(len(b)) != want {
		t.Fatalf("file of %d bytes, want %d", len(b), want)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Cut in the middle of record 1000's data.
	cut := hdr + 1000*recSize + 24 + 5
	cutFile := write("cut.rec", b[:cut])
	replayFails(t, cutFile, fmt.Sprintf("recording truncated: record 1000 (starting at byte offset %d): the file ends 5 bytes into the record's 32 data bytes", hdr+1000*recSize))

	// One flipped bit in record 1234's data.
	d := bytes.Clone(b)
	d[hdr+1234*recSize+24+9] ^= 0x10
	replayFails(t, write("flipped.rec", d), fmt.Sprintf("recording damaged: record 1234 (starting at byte offset %d): checksum", hdr+1234*recSize))

	// A flipped byte in the header.
	d = bytes.Clone(b)
	d[40] ^= 1
	replayFails(t, write("header.rec", d), "recording damaged: header: header checksum")

	// Not a recording at all, and a missing file.
	replayFails(t, write("junk.rec", []byte("this is not a recording")), "not a shmchan recording")
	replayFails(t, filepath.Join(dir, "absent.rec"), "no such file")

	// -partial replays the 1000 whole records before the cut and warns.
	target := newName(t)
	c, err := shmchan.Create[rec](target, shmchan.WithCapacity(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, errOut, code := tool(t, "replay", "-rate", "max", "-close", "-partial", cutFile, target)
	if code != 0 || !strings.Contains(errOut, "warning: recording truncated: record 1000") || !strings.Contains(out, "replayed 1000 values") {
		t.Fatalf("replay -partial: exit %d, out %q, err %q", code, out, errOut)
	}
	recvRecs(t, c, 1000, true)
}

type otherRec struct {
	A, B uint64
}

func TestReplayTypeMismatch(t *testing.T) {
	file := recordedFile(t, 100)
	other := newName(t)
	c, err := shmchan.Create[otherRec](other)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, errOut, code := tool(t, "replay", file, other)
	t.Logf("replay into another type: %s", strings.TrimSpace(errOut))
	if code != 1 || !strings.Contains(errOut, shmchan.ErrTypeMismatch.Error()) || !strings.Contains(errOut, "main.otherRec") {
		t.Errorf("replay into another type: exit %d, %q", code, errOut)
	}
	// The same, in process: the error matches the library's sentinel.
	_, err = replay(context.Background(), replayOpts{file: file, name: other, perSec: 0, line: progress.To(nil, false)})
	if !errors.Is(err, shmchan.ErrTypeMismatch) {
		t.Errorf("replay into another type: %v, want ErrTypeMismatch", err)
	}
	if s := c.Stats(); s.Sent != 0 {
		t.Errorf("replay into another type sent %d values", s.Sent)
	}
	// A []byte channel whose max message is shorter than the values.
	short := newName(t)
	bc, err := shmchan.Create[[]byte](short, shmchan.WithMaxMessageSize(8))
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if _, errOut, code := tool(t, "replay", file, short); code != 1 || !strings.Contains(errOut, "type mismatch") {
		t.Errorf("replay into a []byte channel: exit %d, %q", code, errOut)
	}
}

func TestRecordNeedsConsume(t *testing.T) {
	name := newName(t)
	c, err := shmchan.Create[rec](name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendRecs(t, c, 0, 5)
	file := filepath.Join(t.TempDir(), "x.rec")
	_, errOut, code := tool(t, "record", "-count", "5", name, file)
	if code != 1 || !strings.Contains(errOut, "single-producer (SPSC) channel") || !strings.Contains(errOut, "-consume") {
		t.Errorf("record without -consume: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record without -consume made the file: %v", err)
	}
	if c.Len() != 5 {
		t.Errorf("record without -consume took values: %d left", c.Len())
	}
	// A live receiver elsewhere: -consume is refused, nothing taken.
	other := newName(t)
	startHolder(t, other, "recv", "0")
	if _, errOut, code := tool(t, "record", "-consume", "-count", "1", other, file); code != 1 || !strings.Contains(errOut, "role held by a live process") {
		t.Errorf("record -consume with a live receiver: exit %d, %q", code, errOut)
	}
	// An existing file is not overwritten without -f.
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := tool(t, "record", "-consume", "-count", "5", name, file); code != 1 || !strings.Contains(errOut, "exists (-f overwrites it)") {
		t.Errorf("record onto an existing file: exit %d, %q", code, errOut)
	}
	if out, errOut, code := tool(t, "record", "-consume", "-f", "-count", "5", name, file); code != 0 || !strings.HasPrefix(out, "recorded 5 values") {
		t.Errorf("record -f: exit %d, %q, %q", code, out, errOut)
	}
	// Stops when the channel is closed and drained, and on -duration.
	sendRecs(t, c, 0, 3)
	c.CloseSend()
	if out, _, code := tool(t, "record", "-consume", "-f", name, file); code != 0 || !strings.Contains(out, "recorded 3 values") || !strings.Contains(out, "channel closed and drained") {
		t.Errorf("record of a closed channel: exit %d, %q", code, out)
	}
	idle := newName(t)
	ic, err := shmchan.Create[rec](idle)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	start := time.Now()
	if out, _, code := tool(t, "record", "-consume", "-f", "-duration", "200ms", idle, file); code != 0 || !strings.Contains(out, "recorded 0 values") || !strings.Contains(out, "duration reached") {
		t.Errorf("record -duration: exit %d, %q", code, out)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("record -duration 200ms returned after %v", time.Since(start))
	}
}

// writeRecording writes n values of rec spaced gap apart in time.
func writeRecording(t *testing.T, n int, gap time.Duration) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.Header{Codec: "raw", Type: "main.rec", Fingerprint: rawFingerprint(t), Raw: true, ValueSize: 32, MaxMsg: 32})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		v := recValue(i)
		b := make([]byte, 32)
		binary.LittleEndian.PutUint64(b[0:], v.Seq)
		binary.LittleEndian.PutUint64(b[8:], uint64(v.At))
		for j, x := range v.V {
			binary.LittleEndian.PutUint32(b[16+4*j:], x)
		}
		if err := w.Write(int64(i)*int64(gap), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(0); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "paced.rec")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawFingerprint is rec's fingerprint, from a region made for it.
func rawFingerprint(t *testing.T) uint64 {
	t.Helper()
	name := newName(t)
	c, err := shmchan.Create[rec](name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := snapshotOne(name)
	if err != nil {
		t.Fatal(err)
	}
	return s.Fingerprint
}

// Replay keeps the recorded pace, or the rate asked for: it is never
// early. (Only the lower bound is checked; a slow machine may be late.)
func TestReplayPace(t *testing.T) {
	for _, tc := range []struct {
		rate  string
		n     int
		gap   time.Duration
		least time.Duration
	}{
		{"recorded", 10, 30 * time.Millisecond, 270 * time.Millisecond},
		{"50", 16, time.Hour, 300 * time.Millisecond}, // 15 gaps of 20ms; the recorded gaps are ignored
	} {
		file := writeRecording(t, tc.n, tc.gap)
		target := newName(t)
		c, err := shmchan.Create[rec](target)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rp := startTool(t, "replay", "-rate", tc.rate, "-close", file, target)
		recvRecs(t, c, tc.n, true)
		took := time.Since(start)
		if _, errOut, code := rp.wait(t); code != 0 {
			t.Fatalf("replay -rate %s: exit %d, %s", tc.rate, code, errOut)
		}
		c.Close()
		if took < tc.least {
			t.Errorf("replay -rate %s of %d values took %v, want at least %v", tc.rate, tc.n, took, tc.least)
		}
	}
	for _, bad := range []string{"0", "-3", "fast", "NaN"} {
		if _, _, code := tool(t, "replay", "-rate", bad, "f", "n"); code != 2 {
			t.Errorf("replay -rate %s: exit %d, want 2", bad, code)
		}
	}
}

// A recorder killed mid-stream loses nothing: the file holds an intact
// prefix of the values, and the channel still holds every value after
// the ones released (some may be in both).
func TestRecordKilled(t *testing.T) {
	const n = 50_000
	name := newName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithCapacity(65536))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendRecs(t, c, 0, n)
	c.Close() // the test takes the receiver role later, in a new handle
	file := filepath.Join(t.TempDir(), "killed.rec")
	rt := startTool(t, "record", "-consume", name, file)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := os.Stat(file)
		if err == nil && st.Size() > 200+n/4*56 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the recorder wrote nothing")
		}
		time.Sleep(time.Millisecond)
	}
	rt.cmd.Process.Kill()
	<-rt.done

	r := openCapture(t, file)
	k := 0
	for ; ; k++ {
		rec, err := r.Next()
		if err != nil {
			if !errors.Is(err, capture.ErrTruncated) {
				t.Fatalf("after %d records: %v, want a truncation", k, err)
			}
			break
		}
		if seq := binary.LittleEndian.Uint64(rec.Data); seq != uint64(k) {
			t.Fatalf("record %d holds value %d", k, seq)
		}
	}
	c2, err := shmchan.Open[rec](name)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	first, err := c2.TryRecv()
	left := 1
	switch {
	case errors.Is(err, shmchan.ErrEmpty):
		if k != n {
			t.Fatalf("the channel is empty but the file has only %d of %d values", k, n)
		}
		left, first.Seq = 0, n
	case err != nil:
		t.Fatal(err)
	case first.Seq > uint64(k):
		t.Fatalf("values %d to %d are lost: in neither the file nor the channel", k, first.Seq-1)
	}
	for want := first.Seq + 1; want < n; want++ {
		v, err := c2.TryRecv()
		if err != nil || v.Seq != want {
			t.Fatalf("channel value: %+v, %v; want %d", v, err, want)
		}
		left++
	}
	t.Logf("killed after recording %d values; %d left in the channel (%d in both)", k, left, k-int(first.Seq))
}

// waitReceivers waits until name has want live receivers.
func waitReceivers(t *testing.T, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := snapshotOne(name)
		if err != nil {
			t.Fatal(err)
		}
		if lr, _ := s.liveRoles(); lr == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never had %d live receivers: %+v", name, want, s.Roles)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// openCapture opens a recording for reading; the file is closed when the
// test ends.
func openCapture(t *testing.T, file string) *capture.Reader {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := capture.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recordedSeqs reads a finished recording's values' sequence numbers.
func recordedSeqs(t *testing.T, file string) []uint64 {
	t.Helper()
	r := openCapture(t, file)
	var seqs []uint64
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return seqs
		}
		if err != nil {
			t.Fatalf("after %d records: %v", len(seqs), err)
		}
		seqs = append(seqs, binary.LittleEndian.Uint64(rec.Data))
	}
}

// TestRecordBroadcast: record subscribes to a broadcast channel without
// -consume, while another subscriber also gets every value.
func TestRecordBroadcast(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 10_000
	}
	name := newName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithCapacity(256), shmchan.WithBroadcast(shmchan.WaitForSlowest), shmchan.WithConsumers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := shmchan.Open[rec](name)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := sub.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) { // joins
		t.Fatalf("the subscriber's first receive: %v, want ErrEmpty", err)
	}
	file := filepath.Join(t.TempDir(), "broadcast.rec")
	rt := startTool(t, "record", name, file)
	waitReceivers(t, name, 2) // the subscriber and the recorder

	subErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := 0; i < n; i++ {
			v, err := sub.Recv(ctx)
			if err != nil || v != recValue(i) {
				subErr <- fmt.Errorf("subscriber, value %d: %+v, %v", i, v, err)
				return
			}
		}
		if _, err := sub.Recv(ctx); !errors.Is(err, shmchan.ErrClosed) {
			subErr <- fmt.Errorf("subscriber after %d values: %v, want ErrClosed", n, err)
			return
		}
		subErr <- nil
	}()
	sendRecs(t, c, 0, n)
	if err := c.CloseSend(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := rt.wait(t)
	t.Logf("%s", strings.TrimSpace(out))
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("recorded %d values ", n)) || !strings.Contains(out, "channel closed and drained") || errOut != "" {
		t.Fatalf("record: exit %d, out %q, err %q", code, out, errOut)
	}
	if err := <-subErr; err != nil {
		t.Fatal(err)
	}
	seqs := recordedSeqs(t, file)
	if len(seqs) != n {
		t.Fatalf("the recording holds %d values, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i) {
			t.Fatalf("record %d holds value %d", i, s)
		}
	}
}

// TestRecordBroadcastLagged: a recorder stopped (SIGSTOP) while a
// DropOldest channel laps it misses values; it counts them, says so, and
// records the rest in order.
func TestRecordBroadcastLagged(t *testing.T) {
	const n = 200
	name := newName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithCapacity(16), shmchan.WithBroadcast(shmchan.DropOldest))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := filepath.Join(t.TempDir(), "lagged.rec")
	rt := startTool(t, "record", name, file)
	waitReceivers(t, name, 1)
	sendRecs(t, c, 0, 5)
	if err := rt.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	sendRecs(t, c, 5, n) // never waits: the oldest values are overwritten
	if err := rt.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.CloseSend()
	out, errOut, code := rt.wait(t)
	t.Logf("%s%s", out, errOut)
	var got, missed int
	if _, err := fmt.Sscanf(out, "recorded %d values", &got); err != nil || code != 0 {
		t.Fatalf("record: exit %d, out %q, err %q", code, out, errOut)
	}
	if i := strings.Index(out, "; missed "); i < 0 {
		t.Fatalf("record does not say it missed values: %q", out)
	} else if _, err := fmt.Sscanf(out[i:], "; missed %d", &missed); err != nil {
		t.Fatal(err)
	}
	if got+missed != n || missed == 0 || !strings.Contains(errOut, "missed") {
		t.Fatalf("recorded %d and missed %d of %d values; stderr %q", got, missed, n, errOut)
	}
	seqs := recordedSeqs(t, file)
	if len(seqs) != got || seqs[len(seqs)-1] != n-1 {
		t.Fatalf("the file holds %d values ending with %v, want %d ending with %d", len(seqs), seqs[len(seqs)-1:], got, n-1)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("record %d holds value %d after %d", i, seqs[i], seqs[i-1])
		}
	}
}

// A work queue is consumed like an SPSC channel: -consume is needed.
func TestRecordWorkQueueNeedsConsume(t *testing.T) {
	name := newName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithMultiConsumer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendRecs(t, c, 0, 3)
	c.CloseSend()
	file := filepath.Join(t.TempDir(), "wq.rec")
	if _, errOut, code := tool(t, "record", name, file); code != 1 || !strings.Contains(errOut, "work-queue channel") || !strings.Contains(errOut, "-consume") {
		t.Errorf("record of a work queue without -consume: exit %d, %q", code, errOut)
	}
	if out, errOut, code := tool(t, "record", "-consume", name, file); code != 0 || !strings.HasPrefix(out, "recorded 3 values") {
		t.Errorf("record -consume of a work queue: exit %d, %q, %q", code, out, errOut)
	}
}
