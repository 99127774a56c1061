package ring

import (
	"context"
	"time"

	"github.com/shmchan/shmchan/mq"
)

// MQDoorbell adapts a POSIX message queue to a Doorbell: ringing sends a
// one-byte token (dropped if the queue is full, which already holds a
// pending ring), waiting receives one. Tokens persist in the kernel, so a
// ring that comes before the Wait is not lost. The queue's MsgSize must be 1.
type MQDoorbell struct {
	Q   *mq.Queue
	buf [1]byte
}

var token = []byte{1}

// Ring implements Doorbell.
func (b *MQDoorbell) Ring() { b.Q.TrySend(token, 0) } //nolint:errcheck // full: a ring is pending already

// Wait implements Doorbell. It is called by one goroutine at a time.
func (b *MQDoorbell) Wait(ctx context.Context, timeout time.Duration) error {
	if timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	_, _, err := b.Q.Receive(ctx, b.buf[:])
	return err
}
