package roomlog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
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
	if n, _ := s.GroupCommits(); n != 2 {
		t.Errorf("GroupCommits counts %d fsyncs, want 2", n)
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

// A power loss keeps only what an fsync covered. With durability machine,
// every append that returned (whose PUBACK went out) is in that part: the
// test records how far each fsync reached, appends from 8 goroutines, then
// opens a copy of the log cut at the last fsync, as a machine that lost
// power would find it.
func TestMachineDurabilitySurvivesPowerLoss(t *testing.T) {
	var mu sync.Mutex
	var synced int64
	recordSync := func(f *os.File) error {
		// The write offset, not the file's size: a synced log is
		// preallocated ahead of its records. Everything written before
		// the sync begins is covered by it.
		written, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		if err := datasync(f); err != nil {
			return err
		}
		mu.Lock()
		synced = max(synced, written)
		mu.Unlock()
		return nil
	}
	dir := t.TempDir()
	s, err := Open(dir, Options{Fsync: true, fsync: recordSync})
	if err != nil {
		t.Fatal(err)
	}
	const appenders, each = 8, 50
	acked := make(chan uint64, appenders*each)
	var wg sync.WaitGroup
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				seq, err := s.Append("lobby", time.Now().UnixNano(), func(uint64) ([]byte, error) { return []byte(fmt.Sprint("m", i)), nil })
				if err != nil {
					t.Error(err)
					return
				}
				acked <- seq
			}
		}()
	}
	wg.Wait()
	close(acked)
	mu.Lock()
	cut := synced
	mu.Unlock()
	data, err := os.ReadFile(filepath.Join(dir, "roomlog.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lost := t.TempDir()
	if err := os.WriteFile(filepath.Join(lost, "roomlog.dat"), data[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := Open(lost, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := after.Close(); err != nil {
			t.Error(err)
		}
	})
	last := after.Last("lobby")
	for seq := range acked {
		if seq > last {
			t.Errorf("acknowledged record %d is not in what the last fsync covered (up to %d)", seq, last)
		}
	}
}

// A synced log is preallocated ahead of its records, and a crash leaves the
// zeros in the file: reopening cuts them without calling them a torn tail,
// keeps every record and continues the sequence. A torn record before the
// zeros is still reported.
func TestPreallocatedTailIsNotTorn(t *testing.T) {
	tests := []struct {
		name      string
		tornBytes []byte // written after the last record, inside the preallocated space
		wantTorn  bool
	}{
		{name: "crash with preallocated zeros"},
		{name: "crash in the middle of a record", tornBytes: []byte{40, 0, 0, 0, 1, 2, 3}, wantTorn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Fsync: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := s.Append("lobby", int64(i), func(uint64) ([]byte, error) { return []byte("hello"), nil }); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "roomlog.dat")
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if s.allocated > 0 && fi.Size() <= s.size {
				t.Fatalf("file is %d bytes with records up to %d: not preallocated", fi.Size(), s.size)
			}
			if tt.tornBytes != nil {
				if _, err := s.f.Write(tt.tornBytes); err != nil {
					t.Fatal(err)
				}
			}
			// A crash: no Close, the file keeps its preallocated length.
			crashed := t.TempDir()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(crashed, "roomlog.dat"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			after, err := Open(crashed, Options{Fsync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := after.Close(); err != nil {
					t.Error(err)
				}
			})
			if got := after.Recovery.TornBytes > 0; got != tt.wantTorn {
				t.Errorf("torn bytes %d, want torn = %v", after.Recovery.TornBytes, tt.wantTorn)
			}
			if after.Recovery.Records != 3 {
				t.Errorf("recovered %d records, want 3", after.Recovery.Records)
			}
			seq, err := after.Append("lobby", 9, func(uint64) ([]byte, error) { return []byte("again"), nil })
			if err != nil || seq != 4 {
				t.Errorf("append after recovery: seq %d, %v; want 4", seq, err)
			}
		})
	}
}

// Close gives the preallocated space back: the file ends at its last record.
func TestCloseTrimsPreallocation(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Fsync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("lobby", 1, func(uint64) ([]byte, error) { return []byte("hello"), nil }); err != nil {
		t.Fatal(err)
	}
	size := s.size
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "roomlog.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size {
		t.Errorf("closed log is %d bytes, its records %d", fi.Size(), size)
	}
}
