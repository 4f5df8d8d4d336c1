package session

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/distchat/distchat/chatnode/session/statedir"
)

// TestJournalPositions: in RecordJournal each delivery's position is
// journalled at once and recovered after a kill (no state save since);
// a state save empties the journal.
func TestJournalPositions(t *testing.T) {
	cfg := rigConfig(t, "r1")
	cfg.StateDir = t.TempDir()
	st := statedir.State{Convs: map[string]uint64{"r1": 3}}
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
	again := statedir.State{Convs: map[string]uint64{"r1": 3}}
	ps2, _, err := recoverPositions(Options{Record: RecordJournal}, cfg, &again)
	if err != nil {
		t.Fatal(err)
	}
	if again.Convs["r1"] != 5 {
		t.Fatalf("recovered r1 at %d, want 5", again.Convs["r1"])
	}
	if err := ps2.write(statedir.State{Convs: map[string]uint64{"r1": 5}}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(statedir.JournalPath(cfg.StateDir, cfg.User)); err != nil || fi.Size() != 0 {
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
	st := statedir.State{Convs: map[string]uint64{}}
	ps, _, err := recoverPositions(Options{Record: RecordLog, FlushLog: flush}, cfg, &st)
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.write(statedir.State{Convs: map[string]uint64{"r1": 9}}); err != nil {
		t.Fatal(err)
	}
	got, err := statedir.Load(cfg.StateDir, cfg.User)
	if err != nil {
		t.Fatal(err)
	}
	if got.LogOffset != int64(len(pending)) || got.Convs["r1"] != 9 {
		t.Errorf("state %+v, want r1 at 9 and log_offset %d", got, len(pending))
	}
}
