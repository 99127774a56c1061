package natsbridge

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/internal/testutil"
)

// Cross-process tests re-run this test binary as a helper process, as the
// root package's tests do: helperEnv names the mode, helperArgs holds its
// arguments, space separated; the helper reports on its standard output,
// one line per event.
const (
	helperEnv  = "NATSBRIDGE_TEST_HELPER"
	helperArgs = "NATSBRIDGE_TEST_ARGS"
)

// testName returns a channel name unique to this process and test, removed
// when the test ends.
func testName(t testing.TB) string { return testutil.Name(t) }

// TestMain runs the helper processes, and checks that the tests leaked
// nothing (testutil.Main).
func TestMain(m *testing.M) {
	testutil.Main(m, testutil.Config{
		Prefix: "natsbridge-test",
		Bells: func(name string) []string {
			b := region.BellNames(name)
			return b[:]
		},
		Remove:    func(_ testing.TB, name string) { shmchan.Unlink(name) },
		HelperEnv: helperEnv,
		ArgsEnv:   helperArgs,
		Helper:    runHelper,
	})
}

// rec is the raw value of the tests: a sequence number and a check word.
type rec struct {
	Seq uint64
	Sum uint64
}

func mkrec(i uint64) rec { return rec{Seq: i, Sum: i*0x9E3779B97F4A7C15 ^ 0x5bd1e995} }

func (r rec) ok() bool { return r == mkrec(r.Seq) }

// other is a raw type of rec's size and another fingerprint.
type other struct {
	A, B uint32
	C    uint64
}

// mkbytes is the []byte value for i: 8 + i%50 bytes (the sequence number,
// then a pattern), except that every 1000th value (i%1000 == 7) is empty.
func mkbytes(i uint64) []byte {
	if i%1000 == 7 {
		return []byte{}
	}
	b := make([]byte, 8+i%50)
	binary.LittleEndian.PutUint64(b, i)
	for j := 8; j < len(b); j++ {
		b[j] = byte(i) + byte(j)
	}
	return b
}

// checkbytes checks that b is mkbytes(want).
func checkbytes(b []byte, want uint64) error {
	exp := mkbytes(want)
	if string(b) != string(exp) {
		return fmt.Errorf("value %x, want %x (seq %d)", b, exp, want)
	}
	return nil
}

// vchan is a test channel of either kind: "raw" (rec) or "bytes".
type vchan struct {
	kind string
	r    *shmchan.Chan[rec]
	b    *shmchan.Chan[[]byte]
}

func mkchan(t testing.TB, kind, name string, capacity int) *vchan {
	t.Helper()
	v := &vchan{kind: kind}
	var err error
	switch kind {
	case "raw":
		v.r, err = shmchan.Create[rec](name, shmchan.WithCapacity(capacity))
	case "bytes":
		v.b, err = shmchan.Create[[]byte](name, shmchan.WithCapacity(capacity), shmchan.WithMaxMessageSize(64))
	default:
		t.Fatalf("kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.close() })
	return v
}

func (v *vchan) send(ctx context.Context, i uint64) error {
	if v.r != nil {
		return v.r.Send(ctx, mkrec(i))
	}
	return v.b.Send(ctx, mkbytes(i))
}

func (v *vchan) closeSend() error {
	if v.r != nil {
		return v.r.CloseSend()
	}
	return v.b.CloseSend()
}

// recv receives one value and returns its sequence number; a value that is
// not one of the test's is an error. For []byte values, the empty values
// carry no sequence number: want says which one is expected.
func (v *vchan) recv(ctx context.Context, want uint64) (uint64, error) {
	if v.r != nil {
		x, err := v.r.Recv(ctx)
		if err != nil {
			return 0, err
		}
		if !x.ok() {
			return 0, fmt.Errorf("torn value %+v", x)
		}
		return x.Seq, nil
	}
	b, err := v.b.Recv(ctx)
	if err != nil {
		return 0, err
	}
	if len(b) == 0 {
		if want%1000 != 7 {
			return 0, fmt.Errorf("empty value, want seq %d", want)
		}
		return want, nil
	}
	if len(b) < 8 {
		return 0, fmt.Errorf("short value %x", b)
	}
	seq := binary.LittleEndian.Uint64(b)
	return seq, checkbytes(b, seq)
}

func (v *vchan) close() {
	if v.r != nil {
		v.r.Close()
	} else {
		v.b.Close()
	}
}

// natsd is an embedded NATS server with JetStream on a loopback port.
type natsd struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
}

// startServer starts an embedded server storing JetStream in a temporary
// directory, on a free loopback port.
func startServer(t testing.TB) *natsd {
	t.Helper()
	d := &natsd{t: t, dir: t.TempDir(), port: -1}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *natsd) start() {
	d.t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      d.port,
		JetStream: true,
		StoreDir:  d.dir,
		NoLog:     true,
		NoSigs:    true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		d.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		d.t.Fatal("embedded nats-server did not start")
	}
	d.srv = srv
	d.port = srv.Addr().(*net.TCPAddr).Port
}

func (d *natsd) stop() {
	if d.srv != nil {
		d.srv.Shutdown()
		d.srv.WaitForShutdown()
		d.srv = nil
	}
}

func (d *natsd) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", d.port) }

// dial connects to url, reconnecting for ever, without a reconnect buffer.
func dial(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.NoCallbacksAfterClientClose(),
	)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, err := dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

func mkstream(t testing.TB, js jetstream.JetStream, name, subject string, storage jetstream.StorageType) jetstream.Stream {
	t.Helper()
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name:     name,
		Subjects: []string{subject},
		Storage:  storage,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mkconsumer(t testing.TB, s jetstream.Stream, name string, ackWait time.Duration) jetstream.Consumer {
	t.Helper()
	c, err := s.CreateOrUpdateConsumer(context.Background(), jetstream.ConsumerConfig{
		Durable:   name,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   ackWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// streamMsg is one message read back from a stream.
type streamMsg struct {
	seq    uint64
	header nats.Header
	data   []byte
}

// readStream returns every message of the stream, in order.
func readStream(t testing.TB, s jetstream.Stream) []streamMsg {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []streamMsg
	for uint64(len(out)) < info.State.Msgs {
		mb, err := c.Fetch(int(min(4096, info.State.Msgs-uint64(len(out)))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range mb.Messages() {
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, streamMsg{seq: md.Sequence.Stream, header: m.Headers(), data: m.Data()})
			got++
		}
		if err := mb.Error(); err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			t.Fatalf("read %d of the stream's %d messages, then nothing", len(out), info.State.Msgs)
		}
	}
	return out
}

var say = testutil.Say

// runHelper is the helper process's main; its exit code is its verdict.
func runHelper(mode string, args []string) int {
	arg := testutil.Args(args).Str
	fail := func(err error) int { return testutil.HelperFailed(mode, err) }
	switch mode {
	case "out": // channel url subject: run Out until it returns
		nc, js, err := dial(arg(1))
		if err != nil {
			return fail(err)
		}
		defer nc.Close()
		say("ready")
		if err := Out(context.Background(), arg(0), js, arg(2), WithErrorHandler(func(error) {})); err != nil {
			return fail(err)
		}
		say("done")
		return 0
	case "in": // channel url stream consumer batch: run In until it returns
		nc, js, err := dial(arg(1))
		if err != nil {
			return fail(err)
		}
		defer nc.Close()
		cons, err := js.Consumer(context.Background(), arg(2), arg(3))
		if err != nil {
			return fail(err)
		}
		batch, _ := strconv.Atoi(arg(4))
		say("ready")
		if err := In(context.Background(), cons, arg(0), WithBatch(batch), WithErrorHandler(func(error) {})); err != nil {
			return fail(err)
		}
		say("done")
		return 0
	case "fill": // channel n size: after a line on stdin, send n values of size bytes, then close
		n, _ := strconv.Atoi(arg(1))
		size, _ := strconv.Atoi(arg(2))
		rc, err := shmchan.OpenRaw(arg(0))
		if err != nil {
			return fail(err)
		}
		defer rc.Close()
		say("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fail(err)
		}
		if err := <-fill(context.Background(), rc, n, size); err != nil {
			return fail(err)
		}
		say("done")
		return 0
	case "drain": // channel: receive until the channel is closed and drained
		rc, err := shmchan.OpenRaw(arg(0))
		if err != nil {
			return fail(err)
		}
		defer rc.Close()
		say("ready")
		if err := <-drainChan(context.Background(), rc); err != nil {
			return fail(err)
		}
		say("done")
		return 0
	}
	return fail(errors.New("unknown helper mode"))
}

// helper is a running helper process.
type helper = testutil.Proc

func spawn(t testing.TB, mode string, args ...any) *helper {
	t.Helper()
	return testutil.Helper(t, 64, mode, args...)
}

// spawnIn is spawn with a pipe to the helper's standard input (h.In).
func spawnIn(t testing.TB, mode string, args ...any) *helper {
	t.Helper()
	cmd, err := testutil.HelperCommand(context.Background(), mode, args...)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Start(t, cmd, testutil.ProcOptions{Buffer: 64, Stdin: true})
}
