package jsonlog

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records the writes it receives.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	fail   error
	wrote  chan struct{} // signalled after every write
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 100)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		select {
		case s.wrote <- struct{}{}:
		default:
		}
	}()
	if s.fail != nil {
		return 0, s.fail
	}
	s.writes++
	return s.buf.Write(p)
}

func (s *sink) snapshot() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String(), s.writes
}

func newTest(t *testing.T) (*Writer, *sink, chan time.Time) {
	s := newSink()
	tick := make(chan time.Time)
	w := newWriter(s, tick, func() {})
	t.Cleanup(func() {
		if err := w.Close(); err != nil && s.fail == nil {
			t.Errorf("close: %v", err)
		}
	})
	return w, s, tick
}

func write(t *testing.T, w *Writer, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := w.Write([]byte(l)); err != nil {
			t.Fatalf("write %q: %v", l, err)
		}
	}
}

// TestTickWritesBatch: lines wait for the tick and go out in one write.
func TestTickWritesBatch(t *testing.T) {
	w, s, tick := newTest(t)
	write(t, w, "a\n", "b\n", "c\n")
	if got, n := s.snapshot(); n != 0 || got != "" {
		t.Fatalf("before the tick: %d writes %q", n, got)
	}
	tick <- time.Now()
	select {
	case <-s.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no write after the tick")
	}
	if got, n := s.snapshot(); n != 1 || got != "a\nb\nc\n" {
		t.Fatalf("after the tick: %d writes %q, want 1 write of a b c", n, got)
	}
}

// TestCloseWritesTheRest: Close leaves nothing behind, and Write fails after it.
func TestCloseWritesTheRest(t *testing.T) {
	s := newSink()
	w := NewWriter(s, time.Hour)
	write(t, w, "last\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.snapshot(); got != "last\n" {
		t.Fatalf("after close: %q", got)
	}
	if _, err := w.Write([]byte("late\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestFullBufferWritesAtOnce: FlushBytes of lines go out without a tick.
func TestFullBufferWritesAtOnce(t *testing.T) {
	w, s, _ := newTest(t)
	line := strings.Repeat("x", 1023) + "\n"
	for range FlushBytes / len(line) {
		write(t, w, line)
	}
	if got, n := s.snapshot(); n != 1 || len(got) != FlushBytes {
		t.Fatalf("%d writes of %d bytes, want 1 of %d", n, len(got), FlushBytes)
	}
}

// TestWriteErrorReported: a failed write is reported by the next Write and
// by Close.
func TestWriteErrorReported(t *testing.T) {
	w, s, _ := newTest(t)
	s.fail = errors.New("disk full")
	write(t, w, "a\n")
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("flush: %v", err)
	}
	if _, err := w.Write([]byte("b\n")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write after a failed flush: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("close after a failed flush: no error")
	}
}

// TestConcurrentWritesKeepLines: lines written from many goroutines while
// ticks flush arrive whole, each once.
func TestConcurrentWritesKeepLines(t *testing.T) {
	w, s, tick := newTest(t)
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for {
			select {
			case tick <- time.Now():
			case <-stop:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				write(t, w, fmt.Sprintf("g%d-%d\n", g, i))
			}
		})
	}
	wg.Wait()
	close(stop)
	<-ticked
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := s.snapshot()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	seen := map[string]bool{}
	next := map[int]int{}
	for _, l := range lines {
		if seen[l] {
			t.Fatalf("line %q twice", l)
		}
		seen[l] = true
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d-%d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("line %q out of order, want g%d-%d", l, g, next[g])
		}
		next[g]++
	}
	if len(seen) != 8*500 {
		t.Fatalf("%d distinct lines, want %d", len(seen), 8*500)
	}
}
