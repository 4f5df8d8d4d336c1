package roomlog

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// heldFsync is an fsync that tests release one at a time, counting them.
type heldFsync struct {
	calls   atomic.Int32
	started chan struct{} // one value per fsync that begins
	release chan struct{} // one value lets one fsync finish
}

func newHeldFsync() *heldFsync {
	return &heldFsync{started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (h *heldFsync) sync(f *os.File) error {
	h.calls.Add(1)
	h.started <- struct{}{}
	<-h.release
	return f.Sync()
}

// With durability machine, concurrent appends share fsyncs (group commit),
// and no append returns before an fsync that began after its record was
// written has finished: the hook's PUBACK waits for its batch.
func TestGroupCommit(t *testing.T) {
	for _, appenders := range []int{1, 8, 64} {
		t.Run(fmt.Sprint("appenders=", appenders), func(t *testing.T) { testGroupCommit(t, appenders) })
	}
}

func testGroupCommit(t *testing.T, appenders int) {
	held := newHeldFsync()
	s, err := Open(t.TempDir(), Options{Fsync: true, fsync: held.sync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	// The first append makes its writer the leader; its fsync is held.
	first := make(chan error, 1)
	go func() { first <- appendOne(s, "lobby", 0) }()
	waitFor(t, held.started, "the first fsync")

	// Every other append writes its record, then waits: a group.
	done := make(chan error, appenders)
	for i := range appenders {
		go func() { done <- appendOne(s, fmt.Sprint("room", i%3), i+1) }()
	}
	waitUntil(t, func() bool { _, recs, _ := s.Counts(); return recs == int64(appenders+1) }, "every record written")
	select {
	case err := <-first:
		t.Fatalf("an append returned (%v) before its fsync finished", err)
	case err := <-done:
		t.Fatalf("an append returned (%v) before any fsync finished", err)
	default:
	}

	held.release <- struct{}{} // the first fsync: it covers the first record only
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// One more fsync (begun after every record was written) serves the whole group.
	waitFor(t, held.started, "the group's fsync")
	select {
	case err := <-done:
		t.Fatalf("a grouped append returned (%v) before the group's fsync finished", err)
	default:
	}
	held.release <- struct{}{}
	for range appenders {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := held.calls.Load(); got != 2 {
		t.Errorf("%d appends made %d fsyncs, want 2 (one for the first, one for the group)", appenders+1, got)
	}
}

// A failed fsync fails its appends (no PUBACK: the clients resend) and every
// later one: the file's state after a failed fsync is unknown.
func TestGroupCommitFsyncError(t *testing.T) {
	failing := func(*os.File) error { return os.ErrInvalid }
	s, err := Open(t.TempDir(), Options{Fsync: true, fsync: failing})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	for i := range 2 {
		if err := appendOne(s, "lobby", i); err == nil {
			t.Fatalf("append %d succeeded after a failed fsync", i)
		}
	}
}

func appendOne(s *FileStore, conv string, i int) error {
	_, err := s.Append(conv, time.Now().UnixNano(), func(uint64) ([]byte, error) { return []byte(fmt.Sprint("message ", i)), nil })
	return err
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
