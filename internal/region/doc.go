// Package region owns a shmchan region as an untyped object, for the
// library and every tool alike:
//
//   - Create (encode the header, then Publish the ready word last) and Open
//     (wait a bounded time for the ready word, then validate as
//     layout/FORMAT.md says);
//   - role entries and their OFD locks: TakeRole, DropRole, Alive, Held;
//   - the WaitMQ doorbells (/<name>.rx and /<name>.tx), created with the
//     region's mode, refused when another user owns them, removed by Unlink;
//   - the fault guard (Protect, Recover): a peer that truncates the file
//     under a mapping makes the next access fault, which becomes ErrCorrupt
//     instead of killing the process;
//   - View: a read-only snapshot (file, stored header, validated header,
//     counters, role entries with liveness, doorbells) for tools, read
//     through the same code the library uses.
//
// It knows nothing of value types: the root package adds the codec and the
// typed API on top.
package region
