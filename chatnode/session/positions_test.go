package session

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
			ids, err := replayLog(path, tt.offset, "vic", convs)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(convs, tt.want) || len(ids) != tt.wantIDs {
				t.Errorf("positions %v and %d ids, want %v and %d", convs, len(ids), tt.want, tt.wantIDs)
			}
		})
	}
}

// TestJournalPositions: in RecordJournal each delivery's position is
// journalled at once and recovered after a kill (no state save since);
// a state save empties the journal.
func TestJournalPositions(t *testing.T) {
	cfg := rigConfig(t, "r1")
	cfg.StateDir = t.TempDir()
	st := nodeState{Convs: map[string]uint64{"r1": 3}}
	ps, _, err := recoverPositions(Options{Record: RecordJournal}, cfg, &st)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{4, 5} {
		if err := ps.recorded("r1", seq); err != nil {
			t.Fatal(err)
		}
	}
	// Killed here: the state file still says 3.
	again := nodeState{Convs: map[string]uint64{"r1": 3}}
	ps2, _, err := recoverPositions(Options{Record: RecordJournal}, cfg, &again)
	if err != nil {
		t.Fatal(err)
	}
	if again.Convs["r1"] != 5 {
		t.Fatalf("recovered r1 at %d, want 5", again.Convs["r1"])
	}
	if err := ps2.write(nodeState{Convs: map[string]uint64{"r1": 5}}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(journalPath(cfg.StateDir, cfg.User)); err != nil || fi.Size() != 0 {
		t.Errorf("journal after a save: %v, %v; want empty", fi, err)
	}
	for _, p := range []*positions{ps, ps2} {
		if err := p.close(); err != nil {
			t.Error(err)
		}
	}
}

// TestLogModeSavesAfterFlush: in RecordLog the state file is written only
// after the log is flushed, with the log's size then.
func TestLogModeSavesAfterFlush(t *testing.T) {
	cfg := rigConfig(t, "r1")
	cfg.StateDir = t.TempDir()
	cfg.Log = filepath.Join(t.TempDir(), "me.log")
	pending := []byte(`{"event":"received"}` + "\n")
	flush := func() error {
		f, err := os.OpenFile(cfg.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(pending); err != nil {
			return err
		}
		return f.Close()
	}
	st := nodeState{Convs: map[string]uint64{}}
	ps, _, err := recoverPositions(Options{Record: RecordLog, FlushLog: flush}, cfg, &st)
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.write(nodeState{Convs: map[string]uint64{"r1": 9}}); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(cfg.StateDir, cfg.User)
	if err != nil {
		t.Fatal(err)
	}
	if got.LogOffset != int64(len(pending)) || got.Convs["r1"] != 9 {
		t.Errorf("state %+v, want r1 at 9 and log_offset %d", got, len(pending))
	}
}

// FuzzReadJournal: any journal content reads without a panic, and a
// position comes only from a whole "SEQ CONV" line.
func FuzzReadJournal(f *testing.F) {
	for _, s := range []string{"4 r1\n5 r1\n", "7 @bob,vic\n12 r", "x r1\n", "", "\n\n 3\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		convs := map[string]uint64{}
		if err := readJournal(path, convs); err != nil {
			t.Fatal(err)
		}
		for conv := range convs {
			if conv == "" || !strings.Contains(data, " "+conv+"\n") {
				t.Errorf("position for %q from %q: not from a whole line", conv, data)
			}
		}
	})
}
