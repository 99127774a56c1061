// Package testutil is the scaffolding the tests of shmchan share, so that
// every test binary checks and cleans up the same way:
//
//   - Main, a TestMain: it runs the binary's helper processes, and after the
//     tests checks that nothing leaked (goroutines, file descriptors,
//     mappings of /dev/shm objects, objects in /dev/shm and message queues),
//     then removes whatever this process's tests left under its name prefix;
//     a watchdog process does the same when the test process dies without
//     getting there (a panic, a timeout, SIGKILL);
//   - Name, names unique to the process and the test (prefix, pid, counter);
//   - Proc and Helper: child processes that report on their standard output
//     a line at a time, among them this test binary run again as a helper;
//   - Bounded, which turns a panic or a hang of the code under test into a
//     test failure;
//   - the damaged region images of the damage tests (Damaged...), shared by
//     the Go and the C side.
//
// It is for _test.go files only: no library, tool or bridge code imports it
// (the root package's TestLibraryDeps checks the library's side). It
// imports layout and mq, so the in-package tests of those two cannot use it.
package testutil
