package roomlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit (durability machine): an append waits for an fsync begun after
// its write; the first waiter leads and fsyncs for all. The leader gathers
// first, or clients that wait for each message split into two groups taking
// turns, two flushes a message: it waits for as many records as the previous
// fsync covered plus those written during it, or until maxGather after its
// end. A lone writer does not wait.

// maxGather bounds how long a leader waits for a batch before its fsync.
const maxGather = time.Millisecond

// groupCommit is a FileStore's group commit state.
type groupCommit struct {
	mu      sync.Mutex // guards the fields below (cond waits on it); never held with FileStore.mu
	cond    *sync.Cond
	durable int64 // file offset up to which an fsync has finished
	syncing bool  // a leader is gathering or syncing
	err     error // the first failed fsync: every later append fails
	// The previous fsync, the leader's measure for gathering: the records
	// it covered (their writers come back), those written while it ran
	// (their writers wait already), the written count it covered, its end.
	lastBatch, waitedThrough, covered int64
	lastEnd                           time.Time
	arrived                           chan struct{} // wakes a gathering leader when a record is written
	fsyncs, fsyncTime                 atomic.Int64  // for /stats (ns), read without mu
}

// wrote tells a gathering leader that a record was written, without blocking.
func (g *groupCommit) wrote() {
	select {
	case g.arrived <- struct{}{}:
	default:
	}
}

// batch is the file's size and written count, read together: what a leader syncs.
type batch struct{ size, written int64 }

func (s *FileStore) snapshot() batch {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return batch{size: s.size, written: s.written}
}

// waitDurable returns once the file is synced up to end.
func (s *FileStore) waitDurable(end int64) error {
	g := &s.commit
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.durable < end {
		if g.err != nil {
			return g.err
		}
		if g.syncing {
			g.cond.Wait()
			continue
		}
		g.syncing = true
		want, covered := g.lastBatch+g.waitedThrough, g.covered
		deadline := g.lastEnd.Add(maxGather)
		g.mu.Unlock()
		b := s.gather(want, covered, deadline)
		began := s.opts.now()
		err := s.opts.fsync(s.f)
		ended := s.opts.now()
		g.fsyncTime.Add(int64(ended.Sub(began)))
		g.fsyncs.Add(1)
		waiting := s.snapshot().written - b.written
		g.mu.Lock()
		g.syncing = false
		if err != nil {
			g.err = fmt.Errorf("room log: fsync: %w", err)
		} else if b.size > g.durable {
			g.durable = b.size
		}
		g.lastBatch, g.waitedThrough, g.covered = b.written-covered, waiting, b.written
		g.lastEnd = ended
		g.cond.Broadcast()
	}
	return nil
}

// gather waits for want records past covered, or deadline, and returns the batch.
func (s *FileStore) gather(want, covered int64, deadline time.Time) batch {
	b := s.snapshot()
	if b.written-covered >= want {
		return b
	}
	wait := deadline.Sub(s.opts.now())
	if wait <= 0 {
		return b
	}
	timer := s.opts.after(wait)
	for {
		select {
		case <-s.commit.arrived:
		case <-timer:
			return s.snapshot()
		}
		if b = s.snapshot(); b.written-covered >= want {
			return b
		}
	}
}

// GroupCommits reports how many fsyncs durability machine has made and
// their summed time: what the device's flush costs under the load.
func (s *FileStore) GroupCommits() (fsyncs int64, took time.Duration) {
	return s.commit.fsyncs.Load(), time.Duration(s.commit.fsyncTime.Load())
}
