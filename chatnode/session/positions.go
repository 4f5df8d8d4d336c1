package session

import (
	"time"

	"github.com/distchat/distchat/chatnode/wire"
)

// positions is the per-conversation position (the last room sequence
// handled) kept in the state dir, so a restart catches up from the room log
// where the node stopped. The pipeline marks it changed whenever a
// conversation's position moves, and save writes it. Only the pipeline
// goroutine uses it.
type positions struct {
	dir, user, device string
	dirty             bool
	lastSave          time.Time
}

// saveEvery is the shortest interval between two state file writes.
const saveEvery = 200 * time.Millisecond

func (ps *positions) changed() { ps.dirty = true }

// save writes the state file when something changed (at most every
// saveEvery, and always when force is set).
func (p *pipeline) save(force bool) {
	ps := p.pos
	now := p.clock.Now()
	if !ps.dirty || ps.dir == "" || (!force && now.Sub(ps.lastSave) < saveEvery) {
		return
	}
	out := map[string]uint64{}
	for name, c := range p.convs {
		if c.known && c.delivered > 0 {
			out[name] = c.delivered
		}
	}
	if err := saveState(ps.dir, ps.user, ps.device, out); err != nil {
		p.log.WithField(wire.FieldError, err.Error()).Error("save state")
		return
	}
	ps.dirty, ps.lastSave = false, now
}
