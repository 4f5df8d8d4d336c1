package analysis

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// spoolProgress counts what is copied from an input being spooled and
// prints a progress line at most every two seconds.
type spoolProgress struct {
	w        io.Writer
	progress io.Writer
	what     string
	n        int64
	last     time.Time
}

// progress reports a pass' headway on stderr every two seconds. Readers
// add to it from their goroutines; a goroutine of its own prints.
type progress struct {
	w     io.Writer
	total int64
	done  atomic.Int64
	lines atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func (s *spoolProgress) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	s.n += int64(n)
	if s.progress != nil {
		if now := time.Now(); now.Sub(s.last) >= 2*time.Second {
			s.last = now
			fmt.Fprintf(s.progress, "analysis: reading %s: %.0f MB so far\n", s.what, float64(s.n)/1e6)
		}
	}
	return n, err
}

// start begins a pass; end must follow.
func (p *progress) start(pass stage) {
	p.done.Store(0)
	p.lines.Store(0)
	if p.w == nil {
		return
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				done := p.done.Load()
				fmt.Fprintf(p.w, "analysis: %s: %d lines, %.0f of %.0f MB (%.0f%%)\n", pass, p.lines.Load(),
					float64(done)/1e6, float64(p.total)/1e6, 100*float64(done)/float64(max(p.total, 1)))
			}
		}
	}()
}

// end stops the pass' progress lines.
func (p *progress) end() {
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
		p.stop = nil
	}
}
