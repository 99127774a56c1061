package shmchan

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/shm"
)

// TestForeignDoorbell: a doorbell queue owned by another user is refused,
// as a foreign region is, unless the opener allows it.
func TestForeignDoorbell(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a queue to another uid")
	}
	name, _ := testChan[rec](t, WithWait(WaitMQ))
	q, err := mq.Open(bellNames(name)[1], os.O_RDWR, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Chown(54321, 54321); err != nil {
		t.Fatal(err)
	}
	if uid, _, err := q.Owner(); err != nil || uid != 54321 {
		t.Fatalf("owner %d %v", uid, err)
	}
	if _, err := Open[rec](name); !errors.Is(err, shm.ErrForeignOwner) {
		t.Fatalf("Open with a foreign doorbell: %v, want shm.ErrForeignOwner", err)
	}
	o, err := Open[rec](name, WithAllowForeignOwner())
	if err != nil {
		t.Fatalf("with WithAllowForeignOwner: %v", err)
	}
	o.Close()
}

// TestUnlinkRemovesDoorbells: Unlink removes the region and both queues.
func TestUnlinkRemovesDoorbells(t *testing.T) {
	name := testName(t)
	c, err := Create[rec](name, WithWait(WaitMQ))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	for _, b := range bellNames(name) {
		if _, err := mq.Open(b, os.O_RDWR, 0, nil); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("doorbell %s after Unlink: %v", b, err)
		}
	}
}
