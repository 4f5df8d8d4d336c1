package roomlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func appendN(t *testing.T, s Store, conv string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := s.Append(conv, int64(i), func(seq uint64) ([]byte, error) {
			return []byte(fmt.Sprintf("%s#%d", conv, seq)), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// requireConsecutive checks that conv holds exactly 1..n with matching data.
func requireConsecutive(t *testing.T, s Store, conv string, n int) {
	t.Helper()
	recs, err := s.Read(conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n || s.Last(conv) != uint64(n) {
		t.Fatalf("%s: %d records, last %d; want %d", conv, len(recs), s.Last(conv), n)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || string(r.Data) != fmt.Sprintf("%s#%d", conv, i+1) {
			t.Fatalf("%s: record %d is seq %d %q", conv, i, r.Seq, r.Data)
		}
	}
}

func TestConcurrentAppendsAreConsecutivePerConversation(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync=%t", fsync), func(t *testing.T) {
			s, err := Open(t.TempDir(), Options{Fsync: fsync})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			convs := []string{"lobby", "dev", "@alice,bob"}
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 50; i++ {
						for _, c := range convs {
							if _, err := s.Append(c, 1, func(seq uint64) ([]byte, error) {
								return []byte(fmt.Sprintf("%s#%d", c, seq)), nil
							}); err != nil {
								t.Error(err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			for _, c := range convs {
				requireConsecutive(t, s, c, 8*50)
			}
		})
	}
}

func TestReopenContinuesAndPages(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "lobby", 1234)
	appendN(t, s, "dev", 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Recovery.Records != 1237 || s.Recovery.TornBytes != 0 {
		t.Fatalf("recovery %+v, want 1237 records and nothing torn", s.Recovery)
	}
	appendN(t, s, "lobby", 1) // continues at 1235
	requireConsecutive(t, s, "lobby", 1235)
	// Pages of 100 after 999 return exactly 1000..1235.
	var got []uint64
	for after := uint64(999); ; {
		page, err := s.Read("lobby", after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, r.Seq)
		}
		after = page[len(page)-1].Seq
	}
	if len(got) != 236 || got[0] != 1000 || got[235] != 1235 {
		t.Fatalf("paged read got %d records from %v to %v", len(got), got[0], got[len(got)-1])
	}
	newest, err := s.Newest("dev", 2)
	if err != nil || len(newest) != 2 || newest[0].Seq != 2 || newest[1].Seq != 3 {
		t.Fatalf("Newest(dev, 2) = %+v, %v", newest, err)
	}
}

// TestTornTailRecovered: a crash mid-write leaves a torn or corrupt last
// record; reopening cuts it and keeps every earlier record.
func TestTornTailRecovered(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		keep   int
	}{
		{"truncated mid-record", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size-5); err != nil {
				t.Fatal(err)
			}
		}, 9},
		{"last byte flipped", func(t *testing.T, path string, size int64) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 0xff
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, 9},
		{"garbage appended", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte{7, 0, 0, 0, 1, 2}); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, s, "lobby", 10)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "roomlog.dat")
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path, st.Size())
			s, err = Open(dir, Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			if s.Recovery.TornBytes == 0 {
				t.Error("no torn bytes reported")
			}
			requireConsecutive(t, s, "lobby", tt.keep)
			appendN(t, s, "lobby", 1)
			requireConsecutive(t, s, "lobby", tt.keep+1)
		})
	}
}

func TestRetentionByCount(t *testing.T) {
	s, err := Open("", Options{MaxMessages: 5})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "lobby", 12)
	recs, err := s.Read("lobby", 0, 0)
	if err != nil || len(recs) != 5 || recs[0].Seq != 8 || s.Last("lobby") != 12 {
		t.Fatalf("after retention: %d records from %d, last %d, %v", len(recs), recs[0].Seq, s.Last("lobby"), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("lobby", 0, func(uint64) ([]byte, error) { return nil, nil }); err == nil {
		t.Fatal("append after Close succeeded")
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%t", fsync), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Fsync: fsync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			data := make([]byte, 300)
			b.SetParallelism(4) // 8 appenders on 2 cores: group commit shares fsyncs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append("lobby", 1, func(uint64) ([]byte, error) { return data, nil }); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkCatchUp100k(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	data := make([]byte, 300)
	for i := 0; i < 100_000; i++ {
		if _, err := s.Append("lobby", 1, func(uint64) ([]byte, error) { return data, nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		for after := uint64(0); ; {
			page, err := s.Read("lobby", after, 500)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			n += len(page)
			after = page[len(page)-1].Seq
		}
		if n != 100_000 {
			b.Fatalf("read %d", n)
		}
	}
}

// With durability process the bytes of a record are in the file (the page
// cache) as soon as the append returns, with no Close, so a copy taken then
// (what a kill -9 leaves) holds every record, and the sequence continues
// after reopening it.
func TestProcessDurabilitySurvivesAKill(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 64<<10)
	tests := []struct {
		name    string
		records int
		data    []byte
	}{
		{name: "small records", records: 50, data: []byte("hello")},
		{name: "large records", records: 40, data: big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir, Options{})
			t.Cleanup(func() { closeStore(t, s) })
			for i := range tt.records {
				body := append([]byte(fmt.Sprint(i, ":")), tt.data...)
				if _, err := s.Append("lobby", int64(i), func(uint64) ([]byte, error) { return body, nil }); err != nil {
					t.Fatal(err)
				}
			}
			killed := t.TempDir()
			data, err := os.ReadFile(filepath.Join(dir, "roomlog.dat"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(killed, "roomlog.dat"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			after := openAt(t, killed, Options{})
			t.Cleanup(func() { closeStore(t, after) })
			if after.Recovery.Records != int64(tt.records) || after.Recovery.TornBytes != 0 {
				t.Fatalf("recovered %d records (%d torn bytes), want %d and none torn",
					after.Recovery.Records, after.Recovery.TornBytes, tt.records)
			}
			recs, err := after.Read("lobby", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				if want := append([]byte(fmt.Sprint(i, ":")), tt.data...); r.Seq != uint64(i+1) || !bytes.Equal(r.Data, want) {
					t.Fatalf("record %d: seq %d, %d bytes; want seq %d, %d bytes", i, r.Seq, len(r.Data), i+1, len(want))
				}
			}
			seq, err := after.Append("lobby", 0, func(uint64) ([]byte, error) { return []byte("again"), nil })
			if err != nil || seq != uint64(tt.records+1) {
				t.Errorf("append after reopening: seq %d, %v; want %d", seq, err, tt.records+1)
			}
		})
	}
}

// zeroTail tells a preallocated tail (zeros) from a torn record, wherever
// the first non-zero byte falls relative to its 64 KiB reads.
func TestZeroTail(t *testing.T) {
	const block = 64 << 10
	tests := []struct {
		name    string
		size    int
		nonZero int // index of the one non-zero byte; -1: none
		want    bool
	}{
		{"empty", 0, -1, true},
		{"short zeros", 100, -1, true},
		{"several blocks of zeros", 3*block + 17, -1, true},
		{"non-zero first", 100, 0, false},
		{"non-zero last of a short tail", 100, 99, false},
		{"non-zero last of the first block", 2 * block, block - 1, false},
		{"non-zero first of the second block", 2 * block, block, false},
		{"non-zero last of a long tail", 3*block + 17, 3*block + 16, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const off = 10 // the records before the tail are not read
			data := make([]byte, off+tt.size)
			for i := range off {
				data[i] = 0xff
			}
			if tt.nonZero >= 0 {
				data[off+tt.nonZero] = 1
			}
			path := filepath.Join(t.TempDir(), "tail")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := f.Close(); err != nil {
					t.Error(err)
				}
			})
			got, err := zeroTail(f, off, int64(len(data)))
			if err != nil || got != tt.want {
				t.Errorf("zeroTail = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
