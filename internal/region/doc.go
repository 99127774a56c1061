// Package region owns a shmchan region as an untyped object, for the
// library and every tool alike:
//
//   - Create (encode the header, then Publish the ready word last) and Open
//     (wait a bounded time for the ready word, then validate as
//     layout/FORMAT.md says);
//   - role entries and their OFD locks: TakeRole, DropRole, Alive, Held;
//   - the WaitMQ doorbells (/<name>.rx and /<name>.tx), created with the
//     region's mode, refused when another user owns them, removed by Unlink;
//   - faults: a peer that truncates the file under a mapping makes the next
//     access fault, which becomes ErrCorrupt instead of killing the process.
//     On amd64 the mapping is trapped (shm's SIGBUS handler answers the
//     fault with zero pages and sets the mapping's hit word, Region.Hit;
//     Hit, ring.ErrTrapped), so a hot path needs no guard, only a look at the word
//     after its accesses; elsewhere the guard (Protect and Recover, Arm and
//     Disarm: SetPanicOnFault and a deferred recover) does it. See guard.go;
//   - View: a read-only snapshot (file, stored header, validated header,
//     counters, role entries with liveness, doorbells) for tools, read
//     through the same code the library uses.
//
// It knows nothing of value types: the root package adds the codec and the
// typed API on top.
package region
