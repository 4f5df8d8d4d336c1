package roomlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit (durability machine): every append waits until an fsync
// that began after its record was written has finished, and one fsync
// serves every append waiting for it. The first waiter becomes the leader
// and fsyncs everything written so far; the others wait for it.
//
// Before its fsync the leader gathers: clients that wait for each message
// before the next would otherwise split into two groups taking turns, each
// waiting for two flushes per message. It waits for as many records as the
// previous fsync covered plus those written during it, or until maxGather
// after the previous fsync ended, whichever comes first. A lone writer, or
// writes spread out in time, do not wait.

// maxGather bounds how long a leader waits for a batch before its fsync.
const maxGather = time.Millisecond

// groupCommit is a FileStore's group commit state.
type groupCommit struct {
	// mu guards the fields below it; cond waits on it. Lock order: never
	// held with FileStore.mu (see FileStore).
	mu      sync.Mutex
	cond    *sync.Cond
	durable int64 // file offset up to which an fsync has finished
	syncing bool  // a leader is gathering or syncing
	err     error // the first failed fsync: every later append fails
	// The leader's measure for gathering: lastBatch is how many records
	// the previous fsync covered (their writers are coming back),
	// waitedThrough how many were written while it ran (their writers are
	// waiting already), covered the store's written count it synced up to
	// and lastEnd when it ended.
	lastBatch, waitedThrough, covered int64
	lastEnd                           time.Time
	arrived                           chan struct{} // wakes a gathering leader when a record is written

	// fsyncs and fsyncTime (ns) count the group commits for /stats, read
	// without mu.
	fsyncs, fsyncTime atomic.Int64
}

func (g *groupCommit) init() {
	g.cond = sync.NewCond(&g.mu)
	g.arrived = make(chan struct{}, 1)
}

// wrote tells a gathering leader that a record was written; it never
// blocks.
func (g *groupCommit) wrote() {
	select {
	case g.arrived <- struct{}{}:
	default:
	}
}

// batch is what a leader learns before it syncs: how far the file goes
// and how many records were written, as one snapshot under FileStore.mu.
type batch struct {
	size, written int64
}

// snapshot reads the file's size and written count.
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

// gather waits until want records past covered are written or deadline
// passes, and returns the batch to sync.
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
