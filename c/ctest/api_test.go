package ctest_test

// The C API's own rules (names, timeouts, roles, buffer sizes, closing;
// peer.c's "api" mode checks them call by call), what C reads from a
// header Go wrote, and C's unlink of a WaitMQ region.

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shmchan/shmchan"
)

func TestCAPI(t *testing.T) {
	p := startPeer(t, "api", "name="+testName(t))
	p.ExpectPrefix("ok")
	p.Finish()
}

func TestCInfo(t *testing.T) {
	name := testName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithMultiProducer(), shmchan.WithProducers(5), shmchan.WithCapacity(100),
		shmchan.WithWait(shmchan.WaitMQ))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := startPeer(t, "info", "name="+name)
	got := p.ExpectPrefix("mode ")
	p.Finish()
	want := fmt.Sprintf("mode 1 wait 1 flags 1 producers 5 max_msg 16 capacity 128 fingerprint %#x codec raw type ctest_test.rec",
		recFingerprint(t))
	if got != want {
		t.Fatalf("C read\n%s\nwant\n%s", got, want)
	}
}

func TestCUnlinkRemovesDoorbells(t *testing.T) {
	name := testName(t)
	p := startPeer(t, "hold", "name="+name, "create=spsc", "wait=mq", "role=recv")
	p.ExpectPrefix("holding")
	for _, b := range []string{name + ".rx", name + ".tx"} {
		if !mqExists(b) {
			t.Fatalf("C created no doorbell /%s", b)
		}
	}
	// Go opens what C made, doorbells included.
	c, err := shmchan.Open[[]byte](name, shmchan.WithWait(shmchan.WaitMQ))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.Kill()
	u := startPeer(t, "unlink", "name=/"+name)
	if l := u.ExpectPrefix("unlink "); l != "unlink 0" {
		t.Fatalf("C unlink: %q", l)
	}
	u.Finish()
	for _, b := range []string{name + ".rx", name + ".tx"} {
		if mqExists(b) {
			t.Errorf("doorbell /%s left after C's unlink", b)
		}
	}
	if _, err := os.Stat(shmPath(name)); !os.IsNotExist(err) {
		t.Errorf("region left after C's unlink: %v", err)
	}
	again := startPeer(t, "unlink", "name="+name)
	if l := again.ExpectPrefix("unlink "); !strings.HasSuffix(l, fmt.Sprint(cENOENT)) {
		t.Fatalf("second C unlink: %q, want ENOENT", l)
	}
	again.Finish()
}
