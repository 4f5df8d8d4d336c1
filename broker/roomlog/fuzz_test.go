package roomlog

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fuzzRecord is one record FuzzRecovery writes before the damage.
type fuzzRecord struct {
	conv string
	seq  uint64
	ts   int64
	data []byte
}

// fuzzLog lays out n whole records over two conversations and returns them
// with the file offset each ends at.
func fuzzLog(n int) (recs []fuzzRecord, ends []int, file []byte) {
	last := map[string]uint64{}
	for i := range n {
		conv := []string{"lobby", "@alice,bob"}[i%2]
		last[conv]++
		r := fuzzRecord{conv: conv, seq: last[conv], ts: int64(1000 + i),
			data: bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*7%40)}
		file = append(file, appendRecord(nil, r.conv, r.seq, r.ts, r.data)...)
		recs = append(recs, r)
		ends = append(ends, len(file))
	}
	return recs, ends, file
}

// FuzzRecovery opens a log whose whole records are followed by damage: the
// last cut bytes of the records cut off, then arbitrary bytes. Open must
// not panic, must keep every record that was whole before the damage, and
// must report exactly the bytes it cut (file size before = after + torn);
// the store then appends and reopens clean. Its only refusal is a record
// that checks out but breaks its conversation's sequence.
func FuzzRecovery(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{})
	f.Add(uint8(5), uint16(0), []byte{})
	f.Add(uint8(5), uint16(3), []byte{})
	f.Add(uint8(5), uint16(0), []byte{7, 0, 0, 0, 1, 2})
	f.Add(uint8(3), uint16(10), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(uint8(2), uint16(0), []byte{20, 0, 0, 0, 1, 2, 3, 4, 5, 0, 'l', 'o', 'b', 'b', 'y'})
	_, _, valid := fuzzLog(1)
	f.Add(uint8(4), uint16(0), valid) // a whole record out of sequence
	f.Fuzz(func(t *testing.T, n uint8, cut uint16, tail []byte) {
		recs, ends, file := fuzzLog(int(n % 17))
		cutAt := len(file) - int(cut)%(len(file)+1)
		whole := 0
		for whole < len(ends) && ends[whole] <= cutAt {
			whole++
		}
		undamaged := cutAt == len(file) && len(tail) == 0
		file = append(file[:cutAt:cutAt], tail...)
		dir := t.TempDir()
		path := filepath.Join(dir, "roomlog.dat")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{chunk: 4 << 10})
		if err != nil {
			if !strings.Contains(err.Error(), "has sequence") {
				t.Fatalf("open refused the log: %v", err)
			}
			return
		}
		defer release(t, s)
		size := fileSize(t, dir)
		// What recovery cut is reported as torn, unless it is all zeros:
		// the preallocated space of a synced log is not a torn record.
		cutBytes := file[size:]
		if zeros := !slices.ContainsFunc(cutBytes, func(b byte) bool { return b != 0 }); zeros && len(cutBytes) > 0 {
			if s.Recovery.TornBytes != 0 {
				t.Fatalf("a tail of %d zero bytes reported as %d torn", len(cutBytes), s.Recovery.TornBytes)
			}
		} else if size+s.Recovery.TornBytes != int64(len(file)) {
			t.Fatalf("file of %d bytes kept %d and reported %d torn", len(file), size, s.Recovery.TornBytes)
		}
		if whole > 0 && size < int64(ends[whole-1]) || s.Recovery.Records < int64(whole) {
			t.Fatalf("kept %d bytes, %d records; %d records (%d bytes) were whole", size, s.Recovery.Records, whole, ends[max(whole-1, 0)])
		}
		if undamaged && (s.Recovery.TornBytes != 0 || s.Recovery.Records != int64(whole)) {
			t.Fatalf("an undamaged log of %d records: %+v", whole, s.Recovery)
		}
		requireWhole(t, s, recs[:whole])
		if _, err := s.Append("lobby", 1, func(uint64) ([]byte, error) { return []byte("after"), nil }); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		release(t, s)
		again := openAt(t, dir, Options{chunk: 4 << 10})
		defer release(t, again)
		if again.Recovery.TornBytes != 0 || again.Recovery.Records != s.Recovery.Records+1 {
			t.Fatalf("reopened after an append: %+v, want %d records, nothing torn", again.Recovery, s.Recovery.Records+1)
		}
		requireWhole(t, again, recs[:whole])
	})
}

// requireWhole checks that s serves every record of want, unchanged, first
// in its conversation.
func requireWhole(t *testing.T, s *FileStore, want []fuzzRecord) {
	t.Helper()
	byConv := map[string][]fuzzRecord{}
	for _, r := range want {
		byConv[r.conv] = append(byConv[r.conv], r)
	}
	for conv, rs := range byConv {
		got, err := s.Read(conv, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < len(rs) {
			t.Fatalf("%s: %d records served, %d were whole", conv, len(got), len(rs))
		}
		for i, r := range rs {
			if g := got[i]; g.Seq != r.seq || g.TimeNS != r.ts || !bytes.Equal(g.Data, r.data) {
				t.Fatalf("%s: record %d is #%d %d %q, was #%d %d %q", conv, i, g.Seq, g.TimeNS, g.Data, r.seq, r.ts, r.data)
			}
		}
	}
}

// release closes s's file as a crash leaves it (preallocated tail
// included) and without the fsync of Close: durability is not
// what FuzzRecovery checks, and an fsync per input slows it a hundredfold.
func release(t *testing.T, s *FileStore) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if err := s.f.Close(); err != nil {
		t.Fatal(err)
	}
}
