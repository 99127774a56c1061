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
	section string // sectionSingle, sectionBatch, sectionInPlace, sectionRef, sectionLatency, sectionFanOut
	shm     bool   // a shmchan row: wait system calls and allocations are counted
	// Fan-out rows: the group the row is shown in, and the key of the row
	// it is compared with (what a user would otherwise use), if any.
	group, base string
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
	sectionFanOut  = "fanout"  // many receivers or many senders, 16 bytes, one value per call
)

// The groups of the fan-out section.
const (
	groupWorkQueue = "work queue: each value goes to one receiver; values/s of all receivers together"
	groupBroadcast = "broadcast: every subscriber gets every value; values/s each subscriber gets"
	groupMany      = "many senders, one receiver (with 4 senders, processes outnumber the cores of a 2-core machine)"
)

// allRows lists every row, in table order. The throughput rows run at
// every size, the latency and fan-out rows at 16 bytes.
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

		{key: "fan-wq2", name: "shmchan work queue, 1 → 2 receivers", section: sectionFanOut, group: groupWorkQueue, base: "fan-mq2", shm: true, run: fanOutRun("wq", 2)},
		{key: "fan-mq2", name: "POSIX mq read by 2 processes", section: sectionFanOut, group: groupWorkQueue, run: fanOutRun("mq", 2)},
		{key: "fan-wq4", name: "shmchan work queue, 1 → 4 receivers", section: sectionFanOut, group: groupWorkQueue, base: "fan-mq4", shm: true, run: fanOutRun("wq", 4)},
		{key: "fan-mq4", name: "POSIX mq read by 4 processes", section: sectionFanOut, group: groupWorkQueue, run: fanOutRun("mq", 4)},
		{key: "fan-bc2", name: "shmchan broadcast (wait for slowest), 1 → 2", section: sectionFanOut, group: groupBroadcast, base: "fan-pipe2", shm: true, run: fanOutRun("bcast", 2)},
		{key: "fan-pipe2", name: "a pipe per subscriber, written in turn, 1 → 2", section: sectionFanOut, group: groupBroadcast, run: fanOutRun("pipes", 2)},
		{key: "fan-bc4", name: "shmchan broadcast (wait for slowest), 1 → 4", section: sectionFanOut, group: groupBroadcast, base: "fan-pipe4", shm: true, run: fanOutRun("bcast", 4)},
		{key: "fan-pipe4", name: "a pipe per subscriber, written in turn, 1 → 4", section: sectionFanOut, group: groupBroadcast, run: fanOutRun("pipes", 4)},
		{key: "fan-mpsc2", name: "shmchan MPSC, 2 sending processes", section: sectionFanOut, group: groupMany, shm: true, run: manyToOneRun("mpsc", 2)},
		{key: "fan-mpsc4", name: "shmchan MPSC, 4 sending processes", section: sectionFanOut, group: groupMany, base: "fan-mqw4", shm: true, run: manyToOneRun("mpsc", 4)},
		{key: "fan-mqw4", name: "POSIX mq written by 4 processes", section: sectionFanOut, group: groupMany, run: manyToOneRun("mq", 4)},
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
		if row.section == sectionLatency || row.section == sectionFanOut {
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
