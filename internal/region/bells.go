package region

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/shm"
)

// Doorbells are the WaitMQ mode's wake-up channels: a POSIX message queue
// per side, /<name>.rx for the receiver and /<name>.tx for senders, with
// mq_maxmsg 4 and mq_msgsize 1. A ring is a one-byte token, dropped when
// the queue is full (a ring is pending then).

// BellNames returns the doorbell queue names of region name.
func BellNames(name string) [2]string {
	if len(name) > 0 && name[0] == '/' {
		name = name[1:]
	}
	return [2]string{name + ".rx", name + ".tx"}
}

// mqBell adapts a queue to ring.Doorbell. Tokens persist in the kernel, so
// a ring that comes before the Wait is not lost.
type mqBell struct {
	q   *mq.Queue
	buf [1]byte
}

var token = []byte{1}

func (b *mqBell) Ring() { b.q.TrySend(token, 0) } //nolint:errcheck // full: a ring is pending already

// Wait is called by one goroutine at a time per bell (the ring serialises
// its side's sleepers of one handle). It returns once a ring arrives or
// woken() reports true, and takes the token if it is still there: every
// sleeper of a side with many (MPSC senders, fan-out receivers), in any
// process, has its own descriptor of the queue, and each is told of each
// arrival, so one token wakes them all; whoever is first takes it, so it
// does not end the next sleep. woken is the sleeper's futex word having
// moved, which a waker does before it rings: it catches a ring whose token
// another sleeper took before this one started waiting.
func (b *mqBell) Wait(ctx context.Context, timeout time.Duration, woken func() bool) error {
	if _, _, err := b.q.TryReceive(b.buf[:]); err == nil || woken() {
		return nil
	}
	if timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := b.q.AwaitArrival(ctx, woken); err != nil {
		return err
	}
	b.q.TryReceive(b.buf[:]) //nolint:errcheck // another sleeper may have taken it
	return nil
}

// openBells opens (flag O_CREATE|O_EXCL: creates with mode perm exactly)
// both doorbells of name.
func openBells(name string, flag int, perm fs.FileMode) ([]*mq.Queue, error) {
	var qs []*mq.Queue
	for _, n := range BellNames(name) {
		q, err := mq.Open(n, os.O_RDWR|flag, perm, &mq.Attr{MaxMsg: 4, MsgSize: 1})
		if err == nil && flag&os.O_CREATE != 0 {
			// mq_open applies the umask; the doorbells get the region's mode exactly.
			if err = q.Chmod(perm); err != nil {
				q.Close()
			}
		}
		if err != nil {
			closeBells(qs)
			if flag&os.O_CREATE != 0 {
				for _, n := range BellNames(name) {
					mq.Unlink(n)
				}
			}
			return nil, fmt.Errorf("doorbell: %w", err)
		}
		qs = append(qs, q)
	}
	return qs, nil
}

// ownBells refuses doorbell queues owned by another user (unless the caller
// opted in, as for the region itself): whoever owns a doorbell can ring it,
// or drain it, at will.
func ownBells(qs []*mq.Queue) error {
	for _, q := range qs {
		uid, _, err := q.Owner()
		if err != nil {
			closeBells(qs)
			return err
		}
		if uid != uint32(os.Geteuid()) {
			closeBells(qs)
			return fmt.Errorf("doorbell %s: %w (uid %d)", q.Name(), shm.ErrForeignOwner, uid)
		}
	}
	return nil
}

func closeBells(qs []*mq.Queue) {
	for _, q := range qs {
		q.Close()
	}
}

// unlinkBells removes both doorbells of name; absent ones are no error.
func unlinkBells(name string) error {
	var err error
	for _, b := range BellNames(name) {
		if e := mq.Unlink(b); e != nil && !errors.Is(e, fs.ErrNotExist) && !errors.Is(e, mq.ErrInvalidName) {
			err = errors.Join(err, e)
		}
	}
	return err
}
