package natsbridge

import (
	"log"
	"sync/atomic"
	"time"
)

// Defaults.
const (
	DefaultWindow     = 4000            // Out: publishes awaiting their acknowledgement (nats.go's default PublishAsyncMaxPending)
	DefaultBatch      = 1024            // In: messages per fetch
	DefaultAckTimeout = 5 * time.Second // Out: wait for the oldest acknowledgement before publishing again
)

// An Option configures Out or In.
type Option func(*options)

type options struct {
	window     int
	batch      int
	ackTimeout time.Duration
	onError    func(error)
	counters   *Counters
	heartbeat  time.Duration
}

func parse(opts []Option) *options {
	o := &options{
		window:     DefaultWindow,
		batch:      DefaultBatch,
		ackTimeout: DefaultAckTimeout,
		heartbeat:  2 * time.Second,
		onError:    func(err error) { log.Print(err) },
	}
	for _, f := range opts {
		f(o)
	}
	return o
}

// WithWindow sets how many values Out may have in flight at once,
// published and not yet released (default DefaultWindow). Half the
// channel's capacity bounds it too: values in flight stay in the ring until
// acknowledged, and the producer keeps the other half. For full speed give
// the channel a capacity of at least twice the window. Out publishes and
// releases in batches of an eighth of the window. A JetStream context whose
// PublishAsyncMaxPending is below the window makes Out wait for it.
func WithWindow(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.window = n
		}
	}
}

// WithBatch sets how many messages In fetches at once (default
// DefaultBatch); the channel's free room and the consumer's
// MaxRequestBatch bound it too.
func WithBatch(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.batch = n
		}
	}
}

// WithAckTimeout sets how long Out waits for the oldest acknowledgement
// before it takes the publish as lost and publishes again from there
// (default DefaultAckTimeout). Republishing is safe: the message IDs are
// the same.
func WithAckTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.ackTimeout = d
		}
	}
}

// WithErrorHandler sets the function that gets the errors Out and In go on
// after: malformed messages (matching ErrMalformed), publishes and fetches
// that failed and are retried. The default prints them with the standard
// logger. It is called from the bridge's goroutine; it should not block.
func WithErrorHandler(f func(error)) Option {
	return func(o *options) {
		if f != nil {
			o.onError = f
		}
	}
}

// WithCounters makes Out or In count into c as it goes (for progress
// lines and metrics); c may be read at any time.
func WithCounters(c *Counters) Option {
	return func(o *options) { o.counters = c }
}

// Counters are what Out or In did so far.
type Counters struct {
	// Values: Out: values JetStream acknowledged and Out released from the
	// channel; In: values committed to the channel.
	Values atomic.Uint64
	// Bytes: the data bytes of those values.
	Bytes atomic.Uint64
	// Duplicates: Out: acknowledgements JetStream marked as duplicates
	// (a value published again after a restart or an error, and kept once).
	Duplicates atomic.Uint64
	// Retries: errors Out or In went on after (reported to the error
	// handler), malformed messages not counted.
	Retries atomic.Uint64
	// Malformed: In: messages terminated as malformed.
	Malformed atomic.Uint64
}

func (o *options) count(values, bytes int) {
	if c := o.counters; c != nil {
		c.Values.Add(uint64(values))
		c.Bytes.Add(uint64(bytes))
	}
}

func (o *options) retry(err error) {
	if c := o.counters; c != nil {
		c.Retries.Add(1)
	}
	o.onError(err)
}
