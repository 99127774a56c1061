// Package progress draws a live progress line for long operations of the
// shmchan command (record, replay, bench): one line on a terminal,
// rewritten in place with a carriage return, showing for example values
// done, the rate and the time elapsed. When the output is not a terminal
// (a pipe, a file, a CI log) it prints nothing at all, so logs stay clean.
//
// Whether a file is a terminal is asked of the kernel (TCGETS) through
// golang.org/x/term, in terminal.go: the command makes no system call of
// its own.
package progress
