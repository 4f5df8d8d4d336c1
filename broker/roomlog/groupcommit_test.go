package roomlog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
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

// Close leaves the file ending at its last record, the preallocated space
// of a synced log (durability machine) given back.
func TestCloseTrimsPreallocation(t *testing.T) {
	for _, fsync := range []bool{true, false} {
		t.Run(fmt.Sprintf("fsync=%v", fsync), func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir, Options{Fsync: fsync})
			appendN(t, s, "lobby", 3)
			size := s.size
			closeStore(t, s)
			fi, err := os.Stat(filepath.Join(dir, "roomlog.dat"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != size {
				t.Errorf("closed log is %d bytes, its records %d", fi.Size(), size)
			}
		})
	}
}

// Before its fsync a leader gathers: it waits for the writers of the
// previous fsync's records (in a closed loop they come back a round trip
// after their release) as well as for those that wrote while it ran, so
// one fsync serves them all instead of two groups taking turns. The
// gathering timer never fires here: only the count ends the wait.
func TestGroupCommitGathersThePreviousBatch(t *testing.T) {
	held := newHeldFsync()
	never := make(chan time.Time)
	s := openHeld(t, held, func(time.Duration) <-chan time.Time { return never })
	first := batchOf(s, 1, 0)
	waitFor(t, held.started, "the first fsync")
	others := batchOf(s, 4, 1) // written while the first fsync runs
	waitRecords(t, s, 5)
	held.release <- struct{}{}
	collect(t, first)
	back := batchOf(s, 1, 5) // the first writer comes back: the next fsync waited for it
	waitFor(t, held.started, "the fsync of all five")
	held.release <- struct{}{}
	collect(t, others, back)

	// All five come back, one before the others: one fsync again.
	one := batchOf(s, 1, 6)
	waitRecords(t, s, 7)
	rest := batchOf(s, 4, 7)
	waitFor(t, held.started, "the gathered fsync")
	held.release <- struct{}{}
	collect(t, one, rest)
	if got := held.calls.Load(); got != 3 {
		t.Errorf("%d fsyncs, want 3 (one for the first record, one for each group of five)", got)
	}
}

// A leader gathers no longer than maxGather after the previous fsync
// ended: when its timer fires it syncs what it has.
func TestGroupCommitGatherEndsOnTimer(t *testing.T) {
	held := newHeldFsync()
	fire := make(chan time.Time, 1)
	s := openHeld(t, held, func(d time.Duration) <-chan time.Time {
		if d <= 0 || d > maxGather {
			t.Errorf("gathering for %v, want (0, %v]", d, maxGather)
		}
		return fire
	})
	first := batchOf(s, 1, 0)
	waitFor(t, held.started, "the first fsync")
	others := batchOf(s, 3, 1)
	waitRecords(t, s, 4)
	held.release <- struct{}{}
	collect(t, first)
	// The first writer does not come back: the leader waits for the timer.
	select {
	case <-held.started:
		t.Fatal("an fsync began before the gathering ended")
	default:
	}
	fire <- time.Now()
	waitFor(t, held.started, "the fsync after the timer")
	held.release <- struct{}{}
	collect(t, others)
}

func waitRecords(t *testing.T, s *FileStore, n int64) {
	t.Helper()
	waitUntil(t, func() bool { _, recs, _ := s.Counts(); return recs == n }, fmt.Sprint(n, " records written"))
}

// openHeld opens a synced store whose fsyncs are held, whose gathering
// timer is after and whose clock stands still: a gathering deadline is
// always ahead, so only the count or the timer ends it.
func openHeld(t *testing.T, held *heldFsync, after func(time.Duration) <-chan time.Time) *FileStore {
	t.Helper()
	frozen := time.Now()
	s, err := Open(t.TempDir(), Options{Fsync: true, fsync: held.sync, after: after, now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// batchOf starts n appends to "lobby" at once (messages from, from+1, …);
// their results arrive on the returned channel.
func batchOf(s *FileStore, n, from int) chan error {
	done := make(chan error, n)
	for i := range n {
		go func() { done <- appendOne(s, "lobby", from+i) }()
	}
	return done
}

// collect waits for every append of the batches to return without error.
func collect(t *testing.T, batches ...chan error) {
	t.Helper()
	for _, b := range batches {
		for range cap(b) {
			select {
			case err := <-b:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("an append did not return: its fsync never came")
			}
		}
	}
}

// BenchmarkGroupCommitClosedLoop is ten writers in a closed loop, as the
// pairs-10 load of bench-compare drives the broker with durability machine:
// each appends, waits for its fsync, then takes a round trip of 200 µs
// (spun: a sleep here lasts a millisecond at least) before its next append,
// on a slow device whose flush takes 2 ms more than this machine's. It
// reports the records one fsync serves, with the leader gathering and
// without (its timer fires at once).
func BenchmarkGroupCommitClosedLoop(b *testing.B) {
	const writers, roundTrip, slowDevice = 10, 200 * time.Microsecond, 2 * time.Millisecond
	for _, tc := range []struct {
		name  string
		after func(time.Duration) <-chan time.Time
	}{
		{"gather", time.After},
		{"no-gather", func(time.Duration) <-chan time.Time {
			c := make(chan time.Time, 1)
			c <- time.Time{}
			return c
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			slow := func(f *os.File) error { time.Sleep(slowDevice); return datasync(f) }
			s, err := Open(b.TempDir(), Options{Fsync: true, fsync: slow, after: tc.after})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				if err := s.Close(); err != nil {
					b.Error(err)
				}
			})
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := appendOne(s, fmt.Sprint("room", w), 0); err != nil {
							b.Error(err)
							return
						}
						for began := time.Now(); time.Since(began) < roundTrip; {
							runtime.Gosched()
						}
					}
				})
			}
			wg.Wait()
			fsyncs, _ := s.GroupCommits()
			b.ReportMetric(float64(b.N)/float64(max(fsyncs, 1)), "appends/fsync")
		})
	}
}
