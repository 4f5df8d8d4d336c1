package session

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// pipelineDeps are what the pipeline needs from the rest of the session:
// read-only settings and narrow hooks, no *Session.
type pipelineDeps struct {
	cfg         config.Node // read-only: GapWait, History, MaxPayload, StateDir
	me          string
	clientID    string
	boot        int64
	log         *logrus.Entry
	clock       clock
	emit        func(Event)          // the session's OnEvent
	publishSync func(payload []byte) // publishes a sync request without waiting
	// echoed hears of the node's own room message coming back (the proof
	// that a send whose PUBACK was lost was stored); awaitingEcho reports
	// whether a send still waits for that proof.
	echoed       func(id string)
	awaitingEcho func(id string) bool
	// recordPresence stores a user's presence and returns the previous one;
	// ownDeviceLeft is called when another device of this user said offline.
	recordPresence func(pr wire.Presence) (prev wire.Presence, had bool)
	ownDeviceLeft  func()
}

// pipeline is the single goroutine that owns all delivery state, so none of
// it has a lock: other goroutines hand it work through in (paho's
// deliveries) and ctl (closures, via do). Its jobs are in receive.go,
// order.go, catchup.go, positions.go and presence.go.
type pipeline struct {
	pipelineDeps
	in      *queue
	ctl     chan func()
	quit    chan struct{}
	stopped chan struct{}

	convs   map[string]*conv
	saved   map[string]uint64 // state file contents not yet claimed by a conv
	seen    *idSet
	senders senderGaps
	pos     *positions
	online  bool // the connection is up: the room log can be asked
	// The sync requests in flight by id (catchup.go), the last one's
	// number, and whether the broker keeps a room log: unknown until a
	// reply, or the first request (firstAsk) unanswered for gap_wait.
	inFlight   map[string]request
	reqN       uint64
	roomLog    roomLogState
	firstAsk   time.Time
	dups       atomic.Uint64
	malformedN atomic.Uint64
	onDeliver  map[string]chan struct{}
	received   *receivedLog // writes the "received" lines
}

// clock is the pipeline's time source, so tests drive time by hand
// (fakeClock). NewTicker returns the ticks and a function that stops them.
type clock interface {
	Now() time.Time
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// inbound is one message as paho handed it over, stamped on receipt.
type inbound struct {
	topic    string
	payload  []byte
	retained bool
	recvNS   int64
}

// queue is an unbounded FIFO from paho's handlers to the pipeline goroutine.
// Unbounded because a blocked handler stalls the connection until the
// broker drops it; the broker's in-flight quota bounds it in practice.
type queue struct {
	mu    sync.Mutex // guards items and spare; a leaf lock, held for no I/O
	items []inbound
	spare []inbound // a batch handed back (recycle) to become the next items
	ready chan struct{}
}

// push appends m and wakes the consumer; it never blocks.
func (q *queue) push(m inbound) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// drain takes everything queued so far, for recycle once handled.
func (q *queue) drain() []inbound {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items, q.spare = q.spare[:0], nil
	return out
}

// maxSpare bounds the capacity of a batch kept for reuse.
const maxSpare = 4096

// recycle takes back a handled batch from drain for reuse.
func (q *queue) recycle(batch []inbound) {
	if cap(batch) == 0 || cap(batch) > maxSpare {
		return
	}
	clear(batch) // drops the payloads for the collector
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spare == nil {
		q.spare = batch[:0]
	}
}

func newPipeline(d pipelineDeps, pos *positions, rooms []string, state map[string]uint64) *pipeline {
	p := &pipeline{
		pipelineDeps: d, in: &queue{ready: make(chan struct{}, 1)}, ctl: make(chan func(), 64),
		quit: make(chan struct{}), stopped: make(chan struct{}),
		convs: map[string]*conv{}, saved: state, seen: newIDSet(1 << 18), pos: pos, onDeliver: map[string]chan struct{}{},
		senders: senderGaps{}, inFlight: map[string]request{}, received: newReceivedLog(d.log),
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

func (p *pipeline) run() {
	defer close(p.stopped)
	ticks, stopTicks := p.clock.NewTicker(min(max(p.cfg.GapWait/20, 5*time.Millisecond), 100*time.Millisecond))
	defer stopTicks()
	for {
		select {
		case <-p.in.ready:
			p.handleQueued()
		case f := <-p.ctl:
			f()
		case now := <-ticks:
			p.tick(now)
		case <-p.quit:
			p.handleQueued()
			p.save(true)
			if err := p.pos.close(); err != nil {
				p.log.WithError(err).Error("close state")
			}
			return
		}
	}
}

func (p *pipeline) handleQueued() {
	batch := p.in.drain()
	for _, m := range batch {
		p.handle(m)
	}
	p.in.recycle(batch)
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
	p.checkSenders(now)
	p.retryRequests(now)
	p.save(false)
}

// WaitDelivered returns a channel closed once the message with id is shown,
// so tests and piped sessions keep the screen deterministic.
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

// DMSummary describes one DM conversation of the user, for /dms.
type DMSummary struct {
	Conv     string
	Peer     string // the other party
	Messages uint64 // the last sequence number (both directions) this node knows
	Unread   int    // the peer's messages shown since the last DMs call
}

// DMs lists the user's DM conversations known to this node (with a room
// log, all of them) by key, and resets their unread counts. It returns nil
// when ctx ends or the session stopped.
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
	Duplicates uint64 // deliveries suppressed as already seen
	Malformed  uint64 // payloads skipped as malformed
}

// Stats returns a snapshot of the delivery counters.
func (s *Session) Stats() Stats {
	return Stats{Duplicates: s.p.dups.Load(), Malformed: s.p.malformedN.Load()}
}
