// Package natsbridge carries shmchan channels between machines through NATS
// JetStream. Shared memory stays the fast path on each machine; between
// machines, values travel as JetStream messages.
//
//	machine A: producer → channel "orders" → Out → subject "shmchan.orders" (stream)
//	machine B: stream → consumer → In → channel "orders" → consumer
//
// Out takes the receiver role on a channel and publishes each value as one
// message; In consumes a JetStream consumer and sends each message's value
// into a channel. The bridge is untyped (it uses shmchan.RawChan): it moves
// each value's encoded slot bytes and carries the channel's codec, type
// name and fingerprint, so one command bridges a channel of any type, and
// In refuses a channel of another type with shmchan.ErrTypeMismatch.
//
// # Messages
//
// One value is one message on the subject. Its data is exactly the value's
// slot bytes (a raw value's memory, or a []byte or string value's bytes, or
// what the channel's codec produced). Its headers:
//
//	Nats-Msg-Id          <region>-<pos>: JetStream's de-duplication key
//	Shmchan-Codec        the channel's codec name ("raw", "bytes", "json", ...)
//	Shmchan-Type         the Go type name recorded in the region (informational)
//	Shmchan-Fingerprint  the type fingerprint, 16 lower-case hex digits
//	Shmchan-Region       the region's identity (shmchan.RawInfo.ID), 16 hex digits
//	Shmchan-Pos          the value's position in that region, decimal
//
// The identity changes when the channel's name is removed and created
// again, so <region>-<pos> names one value of one channel's life.
//
// The close marker is a message on the same subject with an empty body, the
// same Shmchan-Codec, -Type, -Fingerprint and -Region headers, a
// Shmchan-Close header (its value: the number of positions the channel had
// used, informational) and Nats-Msg-Id <region>-close. It is the only
// message that is not a value; an empty []byte value has no Shmchan-Close
// header and is a value.
//
// In checks every message: a message without these headers, with a header
// that does not parse, or with data of a size the channel cannot hold (a
// raw value of the wrong size, a value longer than the channel's maximum)
// is malformed: In terminates it (Term, so JetStream never redelivers it),
// reports an error matching ErrMalformed through WithErrorHandler, and goes
// on. A well-formed message whose codec or fingerprint differs from the
// channel's stops In with an error matching shmchan.ErrTypeMismatch, and
// the message stays unacknowledged.
//
// # Delivery
//
// Out releases a value from the channel only after JetStream acknowledged
// its message, publishing with a bounded window of asynchronous publishes
// (WithWindow). A value whose acknowledgement is lost is published again
// under the same Nats-Msg-Id, so within the stream's duplicate window
// (StreamConfig.Duplicates, two minutes by default) the stream holds every
// value exactly once, whenever Out is killed and restarted, and whatever
// errors the connection had. Values keep their order in the stream across
// Out crashes; a publish error (a connection lost mid-window) can put
// values published after the error ahead of the ones republished, unless
// the connection refuses to buffer while reconnecting
// (nats.ReconnectBufSize(-1), as the command sets it).
//
// In fetches only as many messages as the channel has room for, commits
// them with one SendBatch, and only then acknowledges them. It is at least
// once: a value is delivered again when its acknowledgement never reached
// the server, that is when In dies between committing and acknowledging
// (a batch at most), or when the connection or the server goes down with
// acknowledgements on their way (about a fetch at most; a restarted
// server may also forget acknowledgements it had not stored yet). Nothing
// else duplicates: messages delivered to In stay in its hands until they
// are committed (In marks them in progress should a send wait for room),
// and a message nats.go drops after giving up on a fetch was never
// committed (JetStream redelivers it after AckWait, out of order). On the
// close marker, In waits until the consumer's acknowledgement floor shows
// every earlier message acknowledged (so a restarted In never closes ahead
// of redeliveries from a crashed one), then calls CloseSend, acknowledges
// the marker synchronously and returns nil. Messages after the marker are
// not committed: JetStream delivers them to the next reader. In works with
// any AckWait, MaxAckPending, MaxRequestBatch and MaxRequestExpires; its
// fetches wait up to 30 seconds (or MaxRequestExpires) with heartbeats.
//
// Both keep going while the connection is down, relying on the caller's
// reconnect settings (nats.MaxReconnects(-1) to retry for ever); errors
// along the way go to WithErrorHandler. A cancelled context returns
// ctx.Err(). The stream and the consumer are the caller's to create; the
// command shmchan-nats creates them when they do not exist.
package natsbridge
