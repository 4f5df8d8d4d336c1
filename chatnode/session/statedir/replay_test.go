package statedir

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayLog: the positions after a kill come from the node's own
// delivered "received" lines after the saved offset; duplicates, other
// nodes' lines, lines before the offset and a torn last line do not count.
func TestReplayLog(t *testing.T) {
	before := `{"event":"received","node":"vic","room":"r1","room_seq":50,"id":"a-1","duplicate":false}` + "\n"
	after := `{"event":"received","node":"vic","room":"r1","room_seq":7,"id":"a-2","duplicate":false}
{"event":"received","node":"vic","room":"r1","room_seq":9,"id":"a-3","duplicate":true}
{"event":"received","node":"other","room":"r2","room_seq":4,"id":"a-4","duplicate":false}
{"event":"sent","node":"vic","room":"r2","room_seq":5,"id":"a-5"}
{"event":"received","node":"vic","from":"bob","to":"vic","room_seq":3,"id":"b-1","duplicate":false}
{"event":"received","node":"vic","room":"r2","room_seq":2,"id":"a-6","duplicate":false}
{"event":"received","node":"vic","room":"r2","room_seq":8,"id":"a-7","dupl`
	for _, tt := range []struct {
		name    string
		offset  int64
		start   map[string]uint64
		want    map[string]uint64
		wantIDs int
	}{
		{"after the offset", int64(len(before)), map[string]uint64{"r1": 6, "r2": 3},
			map[string]uint64{"r1": 7, "r2": 3, "@bob,vic": 3}, 3},
		{"offset past the end: read from the start", 1 << 20, map[string]uint64{},
			map[string]uint64{"r1": 50, "r2": 2, "@bob,vic": 3}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vic.log")
			if err := os.WriteFile(path, []byte(before+after), 0o644); err != nil {
				t.Fatal(err)
			}
			convs := maps.Clone(tt.start)
			ids, err := ReplayLog(path, tt.offset, "vic", convs)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(convs, tt.want) || len(ids) != tt.wantIDs {
				t.Errorf("positions %v and %d ids, want %v and %d", convs, len(ids), tt.want, tt.wantIDs)
			}
		})
	}
}

// FuzzReadJournal: any journal content reads without a panic, and a
// position comes only from a whole "SEQ CONV" line.
func FuzzReadJournal(f *testing.F) {
	for _, s := range []string{"4 r1\n5 r1\n", "7 @bob,vic\n12 r", "x r1\n", "", "\n\n 3\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		dir := t.TempDir()
		if err := os.WriteFile(JournalPath(dir, "u"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		convs := map[string]uint64{}
		j, err := OpenJournal(dir, "u", convs)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		for conv := range convs {
			if conv == "" || !strings.Contains(data, " "+conv+"\n") {
				t.Errorf("position for %q from %q: not from a whole line", conv, data)
			}
		}
	})
}
