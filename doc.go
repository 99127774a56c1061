// Package shmchan is a typed channel between processes on one Linux
// machine: a Go chan T whose buffer lives in POSIX shared memory.
//
//	c, err := shmchan.OpenOrCreate[Order]("orders", shmchan.WithCapacity(4096))
//	...
//	err = c.Send(ctx, Order{ID: 1, Qty: 5})   // in one process
//	o, err := c.Recv(ctx)                    // in another
//
// # The model
//
// A channel is a named region, /dev/shm/<name> (what shm_open("/<name>")
// names, so C programs see the same object). It holds a checksummed header
// (type fingerprint, capacity, slot size, mode) and a lock-free ring of
// fixed-size slots. Create makes a region, Open attaches to one, and
// OpenOrCreate does whichever is needed, safely when both ends race.
// Unlink removes the name; the memory goes when the last handle closes.
//
// Roles: a handle becomes the sender on its first send and the receiver on
// its first receive. An SPSC channel (the default) has one sender and one
// receiver at a time; WithMultiProducer makes it MPSC, with up to
// WithProducers senders (default 64) in any number of processes. A role is
// an open-file-description lock on the region, which the kernel drops when
// the holding process exits or crashes: a role held by a live process (or
// another handle) is ErrBusy; one whose holder died is taken over, and the
// new holder goes on where the old one stopped.
//
// Fan-out: WithMultiConsumer makes a work queue, whose receivers (up to
// WithConsumers, default 64, in any number of processes) compete for the
// values as goroutines receiving from one chan do: each committed value is
// returned by exactly one receive, and a value a dying receiver had claimed
// but not returned goes to another. WithBroadcast makes a broadcast
// channel: every receiver sees every value sent after it joined (its first
// receive call); WaitForSlowest senders wait for the slowest live receiver,
// DropOldest senders never do, and a receiver that fell a ring behind gets
// a *LagError (ErrLagged) saying how many values it missed. Either works
// with many senders (WithMultiProducer).
//
// What is copied: a pointer-free T (no string, slice, map, interface,
// pointer, chan or func at any depth) travels as its raw bytes, one copy in
// and one copy out, no reflection and no allocation. []byte and string
// travel as their bytes with the slot's length; a type whose pointer has
// AppendBinary and UnmarshalBinary uses them; any other T needs WithCodec
// (codec.JSON, codec.Gob, or your own), else ErrNoCodec. The region records
// a fingerprint of T (its structure for raw types), and Open with another T
// is ErrTypeMismatch.
//
// Blocking: Send waits while the channel is full, Recv while it is empty;
// both spin for a moment, then sleep on a futex in the region (or on a
// message-queue doorbell, WithWait(WaitMQ)). A busy channel makes no system
// calls. Cancelling the context wakes a sleeper at once. CloseSend is
// close(ch): receivers drain what was sent, then get ErrClosed.
//
// What survives a crash: a value is committed when Send returns. A sender
// that dies mid-send leaves nothing half-written visible; every committed
// value stays for the receiver, and a new sender continues after it. A
// receiver that dies loses nothing committed that it had not returned: a
// new receiver continues right after the last value the dead one's Recv
// returned (a value whose Recv returned counts as consumed even if the
// process died before using it). In MPSC, a slot whose writer died between
// claiming and committing it is skipped (Stats.Abandoned) once the writer
// is known dead; a slow or stopped writer is waited for.
//
// Shared memory is untrusted: every index, length and header field a peer
// can write is checked before use, and a bad one is ErrCorrupt, never a
// panic or an out-of-bounds access.
//
// To select over shmchan channels, bridge them to Go channels with
// RecvChan and SendChan. For one goroutine's hot loop, Sender and Receiver
// give the same calls without the handle's per-call lock.
//
// Not supported: other operating systems; machines of different
// architectures sharing a region (raw values are native bytes).
package shmchan
