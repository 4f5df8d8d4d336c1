package roomlog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the tests move by hand (Options.now), so retention by
// age is tested without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recordData is the data of conv's record seq, padded to size bytes.
func recordData(conv string, seq uint64, size int) []byte {
	label := fmt.Sprintf("%s#%d;", conv, seq)
	return []byte(label + strings.Repeat(".", max(size-len(label), 0)))
}

// appendSized appends one record of size bytes to conv, stamped now.
func appendSized(t *testing.T, s Store, conv string, now time.Time, size int) uint64 {
	t.Helper()
	seq, err := s.Append(conv, now.UnixNano(), func(seq uint64) ([]byte, error) {
		return recordData(conv, seq, size), nil
	})
	if err != nil {
		t.Fatalf("append to %s: %v", conv, err)
	}
	return seq
}

// served returns the sequence numbers Read gives for conv after after,
// checking that each record carries its own data.
func served(t *testing.T, s Store, conv string, after uint64) []uint64 {
	t.Helper()
	recs, err := s.Read(conv, after, 0)
	if err != nil {
		t.Fatalf("read %s after %d: %v", conv, after, err)
	}
	seqs := []uint64{}
	for _, r := range recs {
		if !strings.HasPrefix(string(r.Data), fmt.Sprintf("%s#%d;", conv, r.Seq)) {
			t.Fatalf("%s: record %d holds %.40q", conv, r.Seq, r.Data)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

// seqRange is lo..hi; empty when lo is 0 (nothing served).
func seqRange(lo, hi uint64) []uint64 {
	seqs := []uint64{}
	for q := lo; lo > 0 && q <= hi; q++ {
		seqs = append(seqs, q)
	}
	return seqs
}

// requireServed checks what conv serves, from a plain read, from a read
// after a trimmed sequence number, and from Newest, and that Last and Counts
// agree.
func requireServed(t *testing.T, s *FileStore, conv string, from, last uint64) {
	t.Helper()
	want := seqRange(from, last)
	if got := served(t, s, conv, 0); !slices.Equal(got, want) {
		t.Errorf("Read(%s, 0) = %v, want %v", conv, got, want)
	}
	if got := s.Last(conv); got != last {
		t.Errorf("Last(%s) = %d after trimming, want %d", conv, got, last)
	}
	// A node asking for trimmed records gets the oldest record kept first:
	// the jump from after+1 to it is what retention removed. With nothing
	// kept the answer is empty while Last is higher.
	if from == 0 || from > 2 {
		if got := served(t, s, conv, 1); !slices.Equal(got, want) {
			t.Errorf("Read(%s, after trimmed 1) = %v, want %v", conv, got, want)
		}
	}
	if got := served(t, s, conv, last); len(got) != 0 {
		t.Errorf("Read(%s, after last %d) = %v, want nothing", conv, last, got)
	}
	newest, err := s.Newest(conv, int(last)+5)
	if err != nil {
		t.Fatal(err)
	}
	gotNewest := []uint64{}
	for _, r := range newest {
		gotNewest = append(gotNewest, r.Seq)
	}
	if !slices.Equal(gotNewest, want) {
		t.Errorf("Newest(%s) = %v, want %v", conv, gotNewest, want)
	}
	s.mu.RLock()
	convs := slices.Collect(maps.Keys(s.convs))
	s.mu.RUnlock()
	total := 0
	for _, c := range convs {
		total += len(served(t, s, c, 0))
	}
	if _, records, _ := s.Counts(); records != int64(total) {
		t.Errorf("Counts: %d records, but %d are served", records, total)
	}
}

// TestRetentionByAgeAndBytes: records past MaxAge or MaxBytes are no longer
// served, also once the conversation has gone quiet (age) and after the
// store is reopened; Last and the sequence survive trimming, and the disk
// keeps every record until compaction exists (reopening without limits
// serves them again).
func TestRetentionByAgeAndBytes(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		n     int           // records appended
		every time.Duration // clock step between appends
		size  int           // bytes of data per record
		from  uint64        // first record served after the appends
		quiet time.Duration // then the conversation is quiet this long
		// first record served after the quiet period; 0: none
		fromQuiet uint64
	}{
		// Record k is stamped at (k-1)*10m; at 110m the 1h limit keeps
		// 50m (exactly 1h old) and later; 30 quiet minutes later, 80m on.
		{name: "age", opts: Options{MaxAge: time.Hour}, n: 12, every: 10 * time.Minute, size: 20,
			from: 6, quiet: 30 * time.Minute, fromQuiet: 9},
		{name: "age, all expired while quiet", opts: Options{MaxAge: time.Hour}, n: 12, every: 10 * time.Minute, size: 20,
			from: 6, quiet: 3 * time.Hour, fromQuiet: 0},
		// 3 × 30 bytes fit in 100, 4 do not; bytes do not age.
		{name: "bytes", opts: Options{MaxBytes: 100}, n: 12, every: time.Minute, size: 30,
			from: 10, quiet: 24 * time.Hour, fromQuiet: 10},
		{name: "bytes, one record over the limit", opts: Options{MaxBytes: 50}, n: 5, every: time.Minute, size: 80,
			from: 5, quiet: 24 * time.Hour, fromQuiet: 5},
		{name: "age and bytes, the stricter wins", opts: Options{MaxAge: time.Hour, MaxBytes: 100}, n: 12, every: 10 * time.Minute, size: 30,
			from: 10, quiet: 30 * time.Minute, fromQuiet: 10},
		{name: "age and bytes, age stricter once quiet", opts: Options{MaxAge: time.Hour, MaxBytes: 100}, n: 12, every: 10 * time.Minute, size: 30,
			from: 10, quiet: 50 * time.Minute, fromQuiet: 11},
	}
	for _, tt := range tests {
		for _, onDisk := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/on disk=%t", tt.name, onDisk), func(t *testing.T) {
				clock := newFakeClock()
				opts := tt.opts
				opts.now = clock.Now
				dir := ""
				if onDisk {
					dir = t.TempDir()
				}
				s, err := Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Error(err)
					}
				})
				// Retention is per conversation: a small, fresh one beside
				// lobby keeps everything.
				for i := 0; i < tt.n; i++ {
					if i > 0 {
						clock.Advance(tt.every)
					}
					appendSized(t, s, "lobby", clock.Now(), tt.size)
				}
				appendSized(t, s, "dev", clock.Now(), 10)
				last := uint64(tt.n)
				requireServed(t, s, "lobby", tt.from, last)
				if got := served(t, s, "dev", 0); !slices.Equal(got, []uint64{1}) {
					t.Errorf("dev serves %v, want [1]: lobby's retention reached it", got)
				}

				clock.Advance(tt.quiet)
				requireServed(t, s, "lobby", tt.fromQuiet, last)

				if onDisk {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					if s, err = Open(dir, opts); err != nil {
						t.Fatalf("reopen: %v", err)
					}
					if want := int64(tt.n + 1); s.Recovery.Records != want {
						t.Errorf("reopen read %d records, want all %d (trimmed ones stay on disk)", s.Recovery.Records, want)
					}
					requireServed(t, s, "lobby", tt.fromQuiet, last)
				}

				// The sequence continues after trimming, also when
				// everything was trimmed.
				if seq := appendSized(t, s, "lobby", clock.Now(), tt.size); seq != last+1 {
					t.Fatalf("append after trimming got seq %d, want %d", seq, last+1)
				}
				if got := served(t, s, "lobby", 0); len(got) == 0 || got[len(got)-1] != last+1 {
					t.Errorf("after one more append lobby serves %v, want it to end at %d", got, last+1)
				}

				if onDisk {
					// Limits are options of Open, not part of the file: opened
					// without them, the store serves every record again.
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					if s, err = Open(dir, Options{}); err != nil {
						t.Fatalf("reopen without limits: %v", err)
					}
					requireServed(t, s, "lobby", 1, last+1)
				}
			})
		}
	}
}

// TestTrimmingDoesNotCopyTheIndex: at its limit every append drops a
// record. A trim that copied the conversation's whole index would make an
// append cost O(records kept) under the store's lock (about 2.7 ms with
// 100,000 records kept): appends at the limit must not allocate.
func TestTrimmingDoesNotCopyTheIndex(t *testing.T) {
	const keep = 4096
	tests := []struct {
		name string
		opts Options
		kept int
	}{
		{"count", Options{MaxMessages: keep}, keep},
		{"bytes", Options{MaxBytes: keep * 100}, keep},
		{"age", Options{MaxAge: keep * time.Second}, keep + 1}, // both ends exactly MaxAge apart
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			opts := tt.opts
			opts.now = clock.Now
			s, err := Open("", opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			})
			data := make([]byte, 100)
			encode := func(uint64) ([]byte, error) { return data, nil }
			add := func() {
				clock.Advance(time.Second)
				if _, err := s.Append("lobby", clock.Now().UnixNano(), encode); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 * keep {
				add()
			}
			if allocs := testing.AllocsPerRun(1000, add); allocs >= 1 {
				t.Errorf("an append at the limit allocates %.0f times: trimming copies the index", allocs)
			}
			if _, records, _ := s.Counts(); records != int64(tt.kept) {
				t.Errorf("%d records kept, want %d", records, tt.kept)
			}
		})
	}
}
