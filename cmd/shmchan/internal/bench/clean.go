package bench

// The cleaner: whatever happens, the bench removes what it made and kills
// the peers it started.

import (
	"os"
	"sync"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/mq"
)

// cleaner remembers what the bench created so that it can be removed
// whatever happens: regions, queues, and child processes.
type cleaner struct {
	mu    sync.Mutex
	shm   map[string]bool
	mqs   map[string]bool
	procs map[*os.Process]bool
}

func newCleaner() *cleaner {
	return &cleaner{shm: map[string]bool{}, mqs: map[string]bool{}, procs: map[*os.Process]bool{}}
}

// addShm records a region name before it is created.
func (c *cleaner) addShm(name string) {
	c.mu.Lock()
	c.shm[name] = true
	c.mu.Unlock()
}

// addMQ records a queue name before it is created.
func (c *cleaner) addMQ(name string) {
	c.mu.Lock()
	c.mqs[name] = true
	c.mu.Unlock()
}

// unlinkShm removes a region (and its doorbell queues) now.
func (c *cleaner) unlinkShm(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shm[name] {
		_ = shmchan.Unlink(name)
		delete(c.shm, name)
	}
}

// unlinkMQ removes a queue now.
func (c *cleaner) unlinkMQ(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mqs[name] {
		_ = mq.Unlink(name)
		delete(c.mqs, name)
	}
}

func (c *cleaner) addProc(p *os.Process) {
	c.mu.Lock()
	c.procs[p] = true
	c.mu.Unlock()
}

func (c *cleaner) dropProc(p *os.Process) {
	c.mu.Lock()
	delete(c.procs, p)
	c.mu.Unlock()
}

// all kills every child still running and removes every name still there.
func (c *cleaner) all() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.procs {
		_ = p.Kill()
	}
	clear(c.procs)
	for n := range c.shm {
		_ = shmchan.Unlink(n)
	}
	clear(c.shm)
	for n := range c.mqs {
		_ = mq.Unlink(n)
	}
	clear(c.mqs)
}
