package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/shmchan/shmchan"
)

func serve(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return fmt.Sprintf("nats://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)
}

func name(t *testing.T, what string) string {
	n := fmt.Sprintf("shmchan-nats-test-%d-%s", os.Getpid(), what)
	t.Cleanup(func() { shmchan.Unlink(n) })
	return n
}

func TestOutIn(t *testing.T) {
	url := serve(t)
	a, b := name(t, "a"), name(t, "b")
	ca, err := shmchan.Create[[]byte](a, shmchan.WithMaxMessageSize(32))
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := shmchan.Create[[]byte](b, shmchan.WithMaxMessageSize(32), shmchan.WithCapacity(2048))
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 1000
	go func() {
		for i := 0; i < n; i++ {
			ca.Send(ctx, []byte(fmt.Sprintf("value %d", i)))
		}
		ca.CloseSend()
	}()
	// Both sides use the same subject and stream (the defaults derive
	// them from the channel's name, which differs here).
	common := []string{"-server", url, "-subject", "pipe", "-stream", "PIPE", "-progress", "on"}
	var errOut bytes.Buffer
	if code := run(ctx, append(append([]string{"out"}, common...), a), &errOut, &errOut); code != 0 {
		t.Fatalf("out: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), fmt.Sprintf("out: %d values; the channel was closed", n)) {
		t.Errorf("out said: %s", errOut.String())
	}
	var errIn bytes.Buffer
	if code := run(ctx, append(append([]string{"in"}, common...), b), &errIn, &errIn); code != 0 {
		t.Fatalf("in: exit %d: %s", code, errIn.String())
	}
	for i := 0; i < n; i++ {
		v, err := cb.TryRecv()
		if err != nil || string(v) != fmt.Sprintf("value %d", i) {
			t.Fatalf("B: %q, %v; want value %d", v, err, i)
		}
	}
	if _, err := cb.TryRecv(); !errors.Is(err, shmchan.ErrClosed) {
		t.Fatalf("B after the values: %v, want ErrClosed", err)
	}
	t.Logf("out:\n%sin:\n%s", errOut.String(), errIn.String())

	// Interrupted (Ctrl-C is a cancelled context): a clean stop, exit 0.
	c := name(t, "c")
	cc, err := shmchan.Create[[]byte](c, shmchan.WithMaxMessageSize(32))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ictx, icancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer icancel()
	var errStop bytes.Buffer
	if code := run(ictx, []string{"out", "-server", url, "-progress", "off", c}, &errStop, &errStop); code != 0 {
		t.Fatalf("interrupted out: exit %d: %s", code, errStop.String())
	}
	if !strings.Contains(errStop.String(), "stopped after 0 values") {
		t.Errorf("interrupted out said: %s", errStop.String())
	}
}

func TestUsage(t *testing.T) {
	var w bytes.Buffer
	ctx := context.Background()
	for _, args := range [][]string{nil, {"sideways"}, {"out"}, {"in", "a", "b"}, {"out", "-nosuchflag", "x"}} {
		if code := run(ctx, args, &w, &w); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	// No server: the command waits for one, and stops cleanly on Ctrl-C.
	w.Reset()
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if code := run(sctx, []string{"out", "-server", "nats://127.0.0.1:1", "-wait=false", "x"}, &w, &w); code != 0 || !strings.Contains(w.String(), "waiting for the NATS server") {
		t.Errorf("no server: exit %d, said %q", code, w.String())
	}
}

// TestEmbedded: out -embedded serves the stream, in reads it from there,
// and the temporary store is gone at the end.
func TestEmbedded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	a, b := name(t, "ea"), name(t, "eb")
	ca, err := shmchan.Create[uint64](a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := shmchan.Create[uint64](b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	for i := uint64(0); i < 100; i++ {
		ca.Send(context.Background(), i)
	}
	ca.CloseSend()
	t.Setenv("TMPDIR", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	common := []string{"-server", url, "-subject", "emb", "-stream", "EMB", "-progress", "off"}
	var errOut bytes.Buffer
	outDone := make(chan int, 1)
	go func() {
		outDone <- run(ctx, append(append([]string{"out", "-embedded"}, common...), a), &errOut, &errOut)
	}()
	var errIn bytes.Buffer
	ictx, icancel := context.WithTimeout(ctx, 30*time.Second)
	defer icancel()
	if code := run(ictx, append(append([]string{"in"}, common...), b), &errIn, &errIn); code != 0 {
		t.Fatalf("in: exit %d: %s", code, errIn.String())
	}
	for i := uint64(0); i < 100; i++ {
		if v, err := cb.TryRecv(); err != nil || v != i {
			t.Fatalf("B: %d, %v; want %d", v, err, i)
		}
	}
	cancel() // Ctrl-C for out, which kept its server up for in
	if code := <-outDone; code != 0 {
		t.Fatalf("out: exit %d: %s", code, errOut.String())
	}
	if ents, _ := os.ReadDir(os.Getenv("TMPDIR")); len(ents) != 0 {
		t.Errorf("left in the temporary directory: %v", ents)
	}
}
