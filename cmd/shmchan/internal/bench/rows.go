package bench

// The plan: every row of the tables, what runs it, and the cells (row ×
// size) a run measures, in the order each repetition runs them.

import (
	"context"

	"github.com/shmchan/shmchan"
)

// A row is one line of a table: a transport (and how it is used).
type row struct {
	key     string // stable identifier, used in JSON and by -only
	name    string // what the table shows
	section string // sectionSingle, sectionBatch, sectionInPlace, sectionRef, sectionLatency
	shm     bool   // a shmchan row: wait system calls and allocations are counted
	// run measures one cell: size is the value size in bytes (16 for latency).
	run func(ctx context.Context, e *env, size int) (sample, error)
	// na says why the row cannot carry a size, "" if it can.
	na func(size int) string
}

const (
	sectionSingle  = "single"  // one value per call
	sectionBatch   = "batch"   // many values per call
	sectionInPlace = "inplace" // SendFunc/RecvFunc
	sectionRef     = "ref"     // throughput references
	sectionLatency = "latency" // 16-byte round trips
)

// allRows lists every row, in table order. The throughput rows run at
// every size, the latency rows at 16 bytes.
func allRows() []*row {
	return []*row{
		{key: "shm-futex", name: "shmchan, futex wait (default)", section: sectionSingle, shm: true, run: shmRun(shmchan.WaitFutex, sectionSingle)},
		{key: "shm-spin", name: "shmchan, spin wait", section: sectionSingle, shm: true, run: shmRun(shmchan.WaitSpin, sectionSingle)},
		{key: "shm-mqwait", name: "shmchan, mq wait", section: sectionSingle, shm: true, run: shmRun(shmchan.WaitMQ, sectionSingle)},
		{key: "posix-mq", name: "POSIX mq", section: sectionSingle, run: mqThroughput, na: mqNA},
		{key: "pipe", name: "pipe", section: sectionSingle, run: streamThroughput("pipe", false)},
		{key: "unix", name: "Unix stream socket", section: sectionSingle, run: streamThroughput("unix", false)},

		{key: "shm-batch", name: "shmchan SendBatch/RecvBatch", section: sectionBatch, shm: true, run: shmRun(shmchan.WaitFutex, sectionBatch)},
		{key: "pipe-batch", name: "pipe, a batch per write", section: sectionBatch, run: streamThroughput("pipe", true)},
		{key: "unix-batch", name: "Unix socket, a batch per write", section: sectionBatch, run: streamThroughput("unix", true)},

		{key: "shm-inplace", name: "shmchan SendFunc/RecvFunc", section: sectionInPlace, shm: true, run: shmRun(shmchan.WaitFutex, sectionInPlace)},

		{key: "gochan", name: "Go channel (in-process)", section: sectionRef, run: goChanRun, na: goChanNA},
		{key: "bare-ring", name: "bare SPSC ring (spin)", section: sectionRef, run: ringThroughput},
		{key: "copy", name: "copy(), one core", section: sectionRef, run: copyThroughput},

		{key: "rt-cacheline", name: "cache-line ping-pong (spin floor)", section: sectionLatency, run: lineLatency},
		{key: "rt-futex-raw", name: "raw futex ping-pong (sleep floor)", section: sectionLatency, run: futexLatency},
		{key: "rt-shm-spin", name: "shmchan, spin wait", section: sectionLatency, shm: true, run: shmLatency(shmchan.WaitSpin, 0)},
		{key: "rt-shm-futex", name: "shmchan, futex wait (spins 50µs first)", section: sectionLatency, shm: true, run: shmLatency(shmchan.WaitFutex, 0)},
		{key: "rt-shm-futex-sleep", name: "shmchan, futex wait, no spin", section: sectionLatency, shm: true, run: shmLatency(shmchan.WaitFutex, -1)},
		{key: "rt-shm-mqwait", name: "shmchan, mq wait (spins 50µs first)", section: sectionLatency, shm: true, run: shmLatency(shmchan.WaitMQ, 0)},
		{key: "rt-shm-mqwait-sleep", name: "shmchan, mq wait, no spin", section: sectionLatency, shm: true, run: shmLatency(shmchan.WaitMQ, -1)},
		{key: "rt-posix-mq", name: "POSIX mq", section: sectionLatency, run: mqLatency},
		{key: "rt-pipe", name: "pipe (two)", section: sectionLatency, run: streamLatency("pipe")},
		{key: "rt-unix", name: "Unix stream socket", section: sectionLatency, run: streamLatency("unix")},
		{key: "rt-gochan", name: "Go channel (in-process)", section: sectionLatency, run: goChanLatency},
	}
}

// plan lists the cells of a run, in the order each repetition runs them.
func plan(cfg Config) []*cell {
	var cells []*cell
	for _, row := range allRows() {
		if cfg.Only != nil && !cfg.Only.MatchString(row.key) && !cfg.Only.MatchString(row.name) {
			continue
		}
		sizes := cfg.Sizes
		if row.section == sectionLatency {
			sizes = []int{16}
		}
		for _, size := range sizes {
			c := &cell{row: row, size: size}
			if row.na != nil {
				c.na = row.na(size)
			}
			cells = append(cells, c)
		}
	}
	return cells
}
