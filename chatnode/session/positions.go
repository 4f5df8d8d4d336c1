package session

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/distchat/distchat/chatnode/session/statedir"
	"github.com/distchat/distchat/config"
)

// positions is the last room sequence handled per conversation, kept in
// the state dir so a restart catches up where the node stopped. A position
// must become durable together with the record of the deliveries it covers
// (Options.Record): ahead of it a kill -9 loses messages, behind it the
// restart shows them again. Only the pipeline goroutine uses it.
type positions struct {
	dir, user, device string
	mode              RecordMode
	logPath           string
	flushLog          func() error
	journal           *os.File // RecordJournal
	line              []byte   // the journal line being written, reused
	dirty             bool
	lastSave          time.Time
}

// saveEvery is the shortest interval between two state file writes.
const saveEvery = 200 * time.Millisecond

// recoverPositions makes a session's positions, moving st.Convs on to what
// its record (the journal, or the log after the last save) shows; it
// returns the ids the log shows delivered, for dedup.
func recoverPositions(opts Options, cfg config.Node, st *statedir.State) (*positions, []string, error) {
	dir, user := cfg.StateDir, cfg.User
	ps := &positions{dir: dir, user: user, device: st.Device, mode: opts.Record, logPath: cfg.Log, flushLog: opts.FlushLog}
	if dir == "" {
		ps.mode = RecordState
		return ps, nil, nil
	}
	switch ps.mode {
	case RecordJournal:
		f, err := statedir.OpenJournal(dir, user, st.Convs)
		if err != nil {
			return nil, nil, err
		}
		ps.journal = f
	case RecordLog:
		if cfg.Log == "" || ps.flushLog == nil {
			return nil, nil, errors.New("positions from the log: no log file or no way to flush it")
		}
		ids, err := statedir.ReplayLog(cfg.Log, st.LogOffset, cfg.Nick, st.Convs)
		return ps, ids, err
	}
	return ps, nil, nil
}

func (ps *positions) changed() { ps.dirty = true }

// recorded notes that conv's delivery at seq is shown (RecordJournal).
func (ps *positions) recorded(conv string, seq uint64) error {
	if ps.journal == nil || seq == 0 {
		return nil
	}
	ps.line = append(append(append(strconv.AppendUint(ps.line[:0], seq, 10), ' '), conv...), '\n')
	if _, err := ps.journal.Write(ps.line); err != nil { // one write: a kill leaves whole lines
		return fmt.Errorf("positions journal: %w", err)
	}
	return nil
}

func (ps *positions) close() error {
	if ps.journal == nil {
		return nil
	}
	if err := ps.journal.Close(); err != nil {
		return fmt.Errorf("positions journal: %w", err)
	}
	return nil
}

// save writes the state file if changed, at most every saveEvery unless forced.
func (p *pipeline) save(force bool) {
	ps := p.pos
	now := p.clock.Now()
	if !ps.dirty || ps.dir == "" || (!force && now.Sub(ps.lastSave) < saveEvery) {
		return
	}
	st := statedir.State{Device: ps.device, Convs: map[string]uint64{}}
	for name, c := range p.convs {
		if c.known && c.delivered > 0 {
			st.Convs[name] = c.delivered
		}
	}
	if err := ps.write(st); err != nil {
		p.log.WithError(err).Error("save state")
		return
	}
	ps.dirty, ps.lastSave = false, now
}

// write saves st in the state file: in RecordLog after the log lines it
// covers, in RecordJournal before the journal it supersedes is emptied.
func (ps *positions) write(st statedir.State) error {
	if ps.mode == RecordLog {
		if err := ps.flushLog(); err != nil {
			return fmt.Errorf("flush the log before the state: %w", err)
		}
		fi, err := os.Stat(ps.logPath)
		if err != nil {
			return fmt.Errorf("log size: %w", err)
		}
		st.LogOffset = fi.Size()
	}
	if err := statedir.Save(ps.dir, ps.user, st); err != nil {
		return err
	}
	if ps.journal != nil {
		if err := ps.journal.Truncate(0); err != nil {
			return fmt.Errorf("empty the positions journal: %w", err)
		}
	}
	return nil
}
