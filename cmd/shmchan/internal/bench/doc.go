// Package bench is "shmchan bench": it measures shmchan against POSIX
// message queues, pipes and Unix sockets across two processes, with an
// in-process Go channel, copy() and the raw hardware floors (a bare ring,
// cache-line and futex ping-pong) as references, and checks every value
// on receipt. The command (cmd/shmchan/bench.go) parses the flags into a
// Config and calls Run; a process started as a peer calls RunPeer instead.
//
// A run is a pipeline of four stages:
//
//   - Plan (rows.go, config.go). allRows lists every row of the tables: a
//     transport and how it is used (one value per call, batched, in place,
//     a reference, or a 16-byte round trip), with the function that
//     measures one cell. plan crosses the rows that -only keeps with the
//     sizes (the round trips run at 16 bytes only); a row that cannot carry
//     a size says why, and the report prints that as a note.
//   - Runs (run.go, measure.go). Every cell runs once per repetition, rows
//     interleaved round-robin, so the machine's noise spreads over all of
//     them; the report shows the median with min..max. A throughput cell:
//     the sender sends a warm-up (two ring-fulls, or half the time budget if
//     that is shorter), then values for the time budget, then closes; the
//     receiver checks every value (value.go) and times from the end of the
//     warm-up to the close. Timers raise flags for the loops, so a slow
//     transport cannot overrun its budget. A round-trip cell sends a 16-byte
//     value and waits for its echo, timing each one, up to a number of them
//     or a time. The shmchan rows also count the channel's wake-ups and
//     sleeps per value (its Stats, both processes) and the receiving
//     process's heap allocations per value, over the timed part. The -limit
//     stops the repetitions early rather than overrun it.
//     The fan-out section (fanout.go) runs at 16 bytes only: a work queue
//     and a broadcast read by 2 and 4 peer processes (the parent sends),
//     and MPSC written by 2 and 4 (the parent receives), each beside what
//     a user would otherwise use (POSIX mq, a pipe per subscriber); see
//     fanout.go for how they are timed and checked across processes.
//   - Peers (peer.go). Cross-process rows run the sender (or echoer) in a
//     second process: the bench starts its own executable again as
//     "<executable> bench" with the peer's job in SHMCHAN_BENCH_PEER. The
//     parent creates every shared object (regions, queues, pipes, socket
//     pairs, memfds), starts the peer, waits for its "ready", removes the
//     names at once (the peer has them open), says "go", and measures;
//     then it collects the peer's count and error. Pipes, sockets and memfds
//     reach the peer as inherited descriptors and have no name. Each
//     transport family keeps its parent side and its peer side in one file:
//     shmchan.go, kernel.go (POSIX mq, pipes, Unix sockets), ref.go (bare
//     ring, cache-line and futex ping-pong), fanout.go (many receivers or
//     senders, several peers per cell) and inprocess.go (Go channel,
//     copy(), no peer).
//   - Report (report.go, targets.go, json.go, chart.go, format.go). The
//     tables on stdout, the targets (ratios of the medians, and of the best
//     runs) checked against this run, the -json file and the -chart SVG,
//     with the number formatting they share in format.go.
//
// Cleanup (clean.go): every name holds the bench's pid and is removed as
// soon as the peer has opened it, and again (with every child killed) on
// return, error or SIGINT/SIGTERM/SIGHUP. Peers also get SIGKILL if the
// bench dies (Pdeathsig) and exit when their stdin closes.
//
// A value that arrives wrong is a verifyError: it fails the whole run with
// a non-zero exit, since no number of that run can be trusted.
package bench
