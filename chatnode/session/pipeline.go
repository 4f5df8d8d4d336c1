package session

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// The pipeline is the single goroutine that owns all delivery state: the
// conversation table, the dedup set, sender tracks and the sync requests in
// flight. Nothing else touches that state, so none of it has a lock; other
// goroutines hand it work through in (paho's deliveries) and do (closures).
// Its jobs live in one file each:
//
//	receive.go       topic dispatch, dedup by id and room sequence, delivery and the "received" line
//	order.go         a conversation's room order: hold-back and release (drain)
//	gaps.go          where a room sequence gap is detected, and the gap timer (gap_wait)
//	sendergaps.go    gaps in one sender's own sequence (no room log)
//	catchup.go       catch-up, gap and history requests: sending, retrying, the room log's presence
//	catchupreply.go  where a catch-up, gap or history reply is applied
//	positions.go     the per-conversation positions kept in the state dir
//	presence.go      other users' presence

// pipelineDeps are what the pipeline needs from the rest of the session:
// read-only settings and a few narrow hooks, no *Session.
type pipelineDeps struct {
	cfg      config.Node // read-only: GapWait, History, MaxPayload, StateDir
	me       string
	clientID string
	boot     int64
	log      *logrus.Entry
	clock    clock
	emit     func(Event) // the session's OnEvent
	// publishSync publishes an encoded sync request without waiting
	// (connect.go).
	publishSync func(payload []byte)
	// echoed hears of the node's own room message coming back: the proof
	// a send whose PUBACK was lost with the connection was stored;
	// awaitingEcho reports whether a send still waits for that proof
	// (sendwindow.go).
	echoed       func(id string)
	awaitingEcho func(id string) bool
	// recordPresence stores a user's presence in the session's table and
	// returns what was known before; ownDeviceLeft is called when another
	// device of this user said offline while this one is connected
	// (presence.go).
	recordPresence func(pr wire.Presence) (prev wire.Presence, had bool)
	ownDeviceLeft  func()
}

// pipeline owns all delivery state; only its goroutine touches it.
type pipeline struct {
	pipelineDeps
	in      *queue
	ctl     chan func()
	quit    chan struct{}
	stopped chan struct{}

	convs   map[string]*conv
	saved   map[string]uint64 // state file contents not yet claimed by a conv
	seen    *idSet
	senders *senderGaps
	reqs    *syncRequests
	pos     *positions
	// online is whether the connection is up: a gap is not given up on
	// while the room log cannot be asked.
	online     bool
	dups       atomic.Uint64
	delivered  atomic.Uint64
	malformedN atomic.Uint64
	onDeliver  map[string]chan struct{}
	received   *receivedLog // writes the "received" lines
}

func newPipeline(d pipelineDeps, pos *positions, rooms []string, state map[string]uint64) *pipeline {
	p := &pipeline{
		pipelineDeps: d, in: newQueue(), ctl: make(chan func(), 64),
		quit: make(chan struct{}), stopped: make(chan struct{}),
		convs: map[string]*conv{}, saved: state, seen: newIDSet(1 << 18),
		senders:   newSenderGaps(d.log, d.me),
		reqs:      newSyncRequests(d.boot, d.publishSync, d.clock, d.log),
		pos:       pos,
		onDeliver: map[string]chan struct{}{},
		received:  newReceivedLog(d.log),
	}
	for _, r := range rooms {
		p.conv(r)
	}
	for k := range state {
		if _, _, ok := wire.ParseDMConversation(k); ok {
			p.conv(k)
		}
	}
	return p
}

// do runs f on the pipeline goroutine (or drops it after stop).
func (p *pipeline) do(f func()) {
	select {
	case p.ctl <- f:
	case <-p.stopped:
	}
}

// stop ends the pipeline once it has handled what is queued and saved the
// state; Session.Close calls it once.
func (p *pipeline) stop() {
	close(p.quit)
	<-p.stopped
}

func (p *pipeline) tickEvery() time.Duration {
	d := p.cfg.GapWait / 20
	return min(max(d, 5*time.Millisecond), 100*time.Millisecond)
}

func (p *pipeline) run() {
	defer close(p.stopped)
	ticks, stopTicks := p.clock.NewTicker(p.tickEvery())
	defer stopTicks()
	for {
		select {
		case <-p.in.ready:
			batch := p.in.drain()
			for _, m := range batch {
				p.handle(m)
			}
			p.in.recycle(batch)
		case f := <-p.ctl:
			f()
		case now := <-ticks:
			p.tick(now)
		case <-p.quit:
			for _, m := range p.in.drain() {
				p.handle(m)
			}
			p.save(true)
			if err := p.pos.close(); err != nil {
				p.log.WithError(err).Error("close state")
			}
			return
		}
	}
}

// tick runs the timers: the room log's silence, the gap timer of each
// conversation, sender gaps, request retries and the state file.
func (p *pipeline) tick(now time.Time) {
	p.checkRoomLogSilence(now)
	for _, c := range p.convs {
		p.checkGap(c, now)
	}
	for _, c := range p.convs {
		p.repairHoles(c, now)
		p.askTailWhenQuiet(c, now)
	}
	p.senders.check(now, p.cfg.GapWait)
	p.retryRequests(now)
	p.save(false)
}

// WaitDelivered returns a channel closed when the message with id has been
// delivered (shown) by the pipeline. Tests and piped sessions use it to keep
// the screen deterministic.
func (s *Session) WaitDelivered(id string) <-chan struct{} {
	ch := make(chan struct{})
	s.p.do(func() {
		if s.p.seen.has(id) {
			close(ch)
			return
		}
		s.p.onDeliver[id] = ch
	})
	return ch
}

// conv returns the conversation called name, made on first use (at the
// position the state file gives it, if any).
func (p *pipeline) conv(name string) *conv {
	c := p.convs[name]
	if c == nil {
		c = &conv{name: name, pending: map[uint64]pendingMsg{}, holes: map[uint64]bool{}}
		if seq, ok := p.saved[name]; ok {
			c.known, c.delivered = true, seq
		}
		p.convs[name] = c
	}
	return c
}

func (p *pipeline) leave(room string) {
	delete(p.convs, room)
	delete(p.saved, room)
	p.pos.changed()
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

// DMSummary describes one DM conversation of the user, for /dms.
type DMSummary struct {
	Conv string
	// Peer is the other party.
	Peer string
	// Messages is the conversation's last sequence number (both
	// directions), as far as this node knows.
	Messages uint64
	// Unread counts the peer's messages shown since the last DMs call.
	Unread int
}

// DMs lists the user's DM conversations known to this node (after a connect
// to a broker with a room log: all of them), sorted by peer, and resets
// their unread counts. It returns nil when ctx ends or the session stopped.
func (s *Session) DMs(ctx context.Context) []DMSummary {
	out := make(chan []DMSummary, 1)
	s.p.do(func() { out <- s.p.dms() })
	select {
	case l := <-out:
		return l
	case <-ctx.Done():
	case <-s.p.stopped:
	}
	return nil
}

func (p *pipeline) dms() []DMSummary {
	var list []DMSummary
	for _, name := range slices.Sorted(maps.Keys(p.convs)) {
		a, b, ok := wire.ParseDMConversation(name)
		if !ok {
			continue
		}
		c := p.convs[name]
		peer := a
		if a == p.me {
			peer = b
		}
		list = append(list, DMSummary{Conv: name, Peer: peer, Messages: max(c.lastSeq, c.delivered), Unread: c.unread})
		c.unread = 0
	}
	return list
}

// Stats are the session's delivery counters.
type Stats struct {
	// Delivered counts messages shown (live, sync and history).
	Delivered uint64
	// Duplicates counts deliveries suppressed as already seen.
	Duplicates uint64
	// Malformed counts payloads skipped as malformed.
	Malformed uint64
}

// Stats returns a snapshot of the delivery counters.
func (s *Session) Stats() Stats {
	return Stats{Delivered: s.p.delivered.Load(), Duplicates: s.p.dups.Load(), Malformed: s.p.malformedN.Load()}
}
