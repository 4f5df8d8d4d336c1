package roomlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// With durability process the log copies its records into a mapping of the
// file: the bytes are in the file (the page cache) as soon as the append
// returns, with no Close, so a copy taken then (what a kill -9 leaves)
// holds every record; the sequence continues after reopening it, across
// mapping chunks, and a log that cannot map writes instead, on from where
// the mapping stopped.
func TestMappedTailSurvivesAKill(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 64<<10) // 64 KiB records: preallocChunk is crossed
	tests := []struct {
		name      string
		records   int
		data      []byte
		stopMapAt int // after this many appends the log may no longer map (0: never)
	}{
		{name: "small records", records: 50, data: []byte("hello")},
		{name: "across mapping chunks", records: 2*preallocChunk/len(big) + 3, data: big},
		{name: "mapping stops halfway", records: 40, data: []byte("hello"), stopMapAt: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir, Options{})
			t.Cleanup(func() { closeStore(t, s) })
			for i := range tt.records {
				if tt.stopMapAt > 0 && i == tt.stopMapAt {
					s.mu.Lock()
					if err := s.unmapTail(); err != nil {
						t.Error(err)
					}
					s.noMapping = true
					s.mu.Unlock()
				}
				body := append([]byte(fmt.Sprint(i, ":")), tt.data...)
				if _, err := s.Append("lobby", int64(i), func(uint64) ([]byte, error) { return body, nil }); err != nil {
					t.Fatal(err)
				}
			}
			if runtime.GOOS == "linux" && tt.stopMapAt == 0 && s.tail.data == nil {
				t.Error("durability process did not map the log's tail")
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

// The log has the pages ahead of its records faulted in for writing, a
// window at a time: after every append the prefaulted range reaches past
// the records, by no more than a window and a page, across mapping chunks.
func TestMappedTailPrefaultsAhead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the log maps its tail on Linux only")
	}
	s := openAt(t, t.TempDir(), Options{chunk: 1 << 20})
	t.Cleanup(func() { closeStore(t, s) })
	body := bytes.Repeat([]byte("p"), 3000)
	windows := 0
	last := int64(0)
	for i := range 1000 { // about 3 MB: three mapping chunks
		if _, err := s.Append("lobby", int64(i), func(uint64) ([]byte, error) { return body, nil }); err != nil {
			t.Fatal(err)
		}
		s.mu.RLock()
		tail, size := s.tail, s.size
		s.mu.RUnlock()
		if tail.noPrefault {
			t.Skip("this kernel refuses MADV_POPULATE_WRITE (before Linux 5.14): pages fault as they are written")
		}
		mapEnd := tail.off + int64(len(tail.data))
		if tail.prefaulted < size || tail.prefaulted > min(size+prefaultWindow+int64(pageSize), mapEnd) {
			t.Fatalf("append %d: records end at %d, pages faulted in up to %d (mapping %d to %d, window %d)",
				i, size, tail.prefaulted, tail.off, mapEnd, prefaultWindow)
		}
		if tail.prefaulted != last {
			windows++
			last = tail.prefaulted
		}
	}
	if maxWindows := int(s.size/prefaultWindow) + 3*2; windows > maxWindows {
		t.Errorf("%d prefault calls for %d bytes of records, want at most %d (one a window)", windows, s.size, maxWindows)
	}
}
