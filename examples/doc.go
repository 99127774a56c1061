// Package examples holds runnable programs that show shmchan across
// processes, one per directory (go run ./examples/NAME):
//
//   - producer and consumer: the two sides of one SPSC channel, in two
//     terminals; demo runs both with one command (their code is in
//     internal/flow);
//   - pipeline: source → work queue → N workers → MPSC → sink, checking
//     that every value arrives exactly once;
//   - broadcast: one publisher and several subscribers, one of them slow
//     (WaitForSlowest, or DropOldest with -drop).
//
// This package itself has no code: its test builds pipeline and broadcast
// and runs each briefly.
package examples
