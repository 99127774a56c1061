// Package mq is a Go binding for POSIX message queues on Linux (mq_overview(7)),
// written over the raw system calls: no cgo, no C library.
//
// # What a POSIX message queue is
//
// A message queue is a kernel object with a name ("/jobs") that any process
// allowed by its permission bits can open. It holds up to MaxMsg messages of
// up to MsgSize bytes each, copied in by a sender and out by a receiver. Each
// message has a priority below PrioMax (32768); a receive always takes the
// oldest message of the highest priority present, so the queue is FIFO
// within a priority. Messages survive their sender: a queue lives until it
// is unlinked and its last handle is closed, or the machine reboots.
//
//	q, err := mq.Open("/jobs", os.O_RDWR|os.O_CREATE, 0o600, &mq.Attr{MaxMsg: 10, MsgSize: 256})
//	...
//	err = q.Send(ctx, []byte("job 1"), 0)
//	buf := make([]byte, q.MsgSize())
//	n, prio, err := q.Receive(ctx, buf)
//
// # When to use it instead of shared memory
//
// Every message costs two system calls and two copies through the kernel,
// so a queue moves at most a few million small messages a second (often
// far fewer: a send and a receive cost a microsecond or more together),
// where a shared-memory ring such as the shmchan root package's makes no
// system call at all on its fast path.
// In exchange the kernel does all the work shared memory leaves to its users:
// framing, priorities, blocking and waking, permissions, and safety against a
// peer that crashes or writes garbage (there is no shared state to corrupt).
// A message queue is the right tool for low or moderate rates, for control
// messages and for wake-ups ("doorbells") next to a shared-memory ring, and
// for talking to programs in other languages that use mq_open. The
// descriptor is pollable, which is what lets a blocked Receive here park a
// goroutine instead of a thread.
//
// # Limits
//
// Linux bounds queues with sysctls under /proc/sys/fs/mqueue: msg_max
// (largest MaxMsg, default 10), msgsize_max (largest MsgSize, default 8192),
// msg_default and msgsize_default (the sizes of a queue created without
// Attr), and queues_max (queues in the IPC namespace, default 256). A process
// with CAP_SYS_RESOURCE may exceed the first two up to the kernel's hard
// limits (65536 messages, 16 MiB per message) and ignore queues_max. Every
// user is also charged for the memory of all the queues it created against
// RLIMIT_MSGQUEUE (819200 bytes by default, with no exemption for root):
// MaxMsg × MsgSize plus about 100 bytes of kernel bookkeeping per message.
// Creation errors caused by these limits match ErrLimit and name the limit
// and its value. [UserLimit] reads RLIMIT_MSGQUEUE, and [Queue.Owner] tells
// who owns a queue, for tools that check a machine.
//
// Queue names live in the IPC namespace's mqueue filesystem, which may be
// mounted (usually on /dev/mqueue) to list or remove queues with ls and rm,
// but need not be: this package does not use it.
//
// # Blocking, cancellation and concurrency
//
// Open always opens the descriptor non-blocking and hands it to the Go
// runtime poller (epoll). TrySend and TryReceive make one system call and do
// not allocate. Send and Receive first try the same way; when the queue is
// full (empty) they park the goroutine in the poller, holding no OS thread,
// until the queue changes, their context is done, or the Queue is closed.
// Context cancellation takes effect at once: the wait is cut short through
// the file's I/O deadline, and a cancelled call returns ctx.Err() without
// having sent or received anything. See SetNonblock for the non-blocking
// mode.
//
// A Queue is safe for concurrent use by multiple goroutines, and any number of
// handles in any number of processes may use one queue at the same time.
//
// # Notification
//
// Notify registers the process for a signal when a message arrives on an
// empty queue (mq_notify, SIGEV_SIGNAL); see its documentation and the
// example. Most Go programs will prefer a goroutine blocked in Receive.
package mq
