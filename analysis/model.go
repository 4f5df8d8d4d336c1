package analysis

import (
	"sort"

	"github.com/distchat/distchat/chatnode/wire"
)

// knownEvents are the event names of wire; any other is a bad line.
var knownEvents = map[string]bool{}

func init() {
	for _, e := range []string{wire.EventConnected, wire.EventConnectionLost, wire.EventReconnecting,
		wire.EventReconnected, wire.EventSubscribed, wire.EventUnsubscribed, wire.EventSent, wire.EventSendFailed,
		wire.EventReceived, wire.EventGap, wire.EventMalformed, wire.EventPresence, wire.EventSync,
		wire.EventBenchStart, wire.EventBenchEnd, wire.EventFault, wire.EventShutdown, wire.EventSubscribeFailed,
		wire.EventClientLog} {
		knownEvents[e] = true
	}
}

// sentMsg is what pass one learns about a message, kept small because there
// is one per message: got marks which of the scenario's nodes received it.
type sentMsg struct {
	sentNS int64
	got    uint64 // bit n: node n received it (hence at most maxNodes nodes)
	conv   int32  // index into scenario.convs
	sender int32
}

// maxNodes is the most nodes one scenario may have (the width of sentMsg.got).
const maxNodes = 64

type interval struct{ from, to int64 }

// memberKey is one node's membership of one conversation.
type memberKey struct {
	node int32
	conv int32
}

type faultKey struct{ fault, target string }

// scenario collects one run label's data.
type scenario struct {
	name      string
	run       string           // the run label of its lines ("" for name unlabelled)
	nodes     map[string]int32 // node -> index
	nodeNames []string
	lastTS    []int64
	member    map[memberKey][]interval
	open      map[memberKey]int64
	faults    []Fault
	openFault map[faultKey]int64
	// the measured window (-warmup, -cooldown) over send times
	winFrom, winTo int64

	sent     []sentMsg
	byID     map[string]int32 // message id -> index in sent: ids are unique within a run only
	convs    []string         // interned conversation names: room, or "@" + recipient
	convIdx  map[string]int32
	lastConv int32 // the last conversation looked up, or -1
	ackUS    []int32
	senderAk map[int32][]int32
	firstNS  int64
	lastNS   int64

	// pass two
	recv      []*receiverAcc
	unmatched int64
	negative  int64   // deliveries with a negative one-way latency (clock skew)
	timeline  []point // (recv time, latency ms) sample of live deliveries, for plots
	timeSync  []point // the same for deliveries via sync
	tlEvery   int64
	tlCount   int64
}

// Fault is one shaded window in the latency-over-time plot.
type Fault struct {
	Name    string `json:"fault"`
	Target  string `json:"target"`
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
}

type receiverAcc struct {
	live, sync []int32 // latency µs of first deliveries
	self       []int32 // latency of own messages: the node's round trip
	duplicates int64
	reordered  int64
	lastSeq    map[streamKey]int64 // highest seq seen per sender stream
	perSecond  map[int64]int64     // unique deliveries per second of receive time
}

type point struct{ x, y float64 }

// streamKey is one sender's sequence within a conversation and a boot.
type streamKey struct {
	from, conv int32
	boot       int64
}

// model is everything both passes build.
type model struct {
	runs     map[string]*scenario
	order    []string
	lines    int64
	badLines int64
	files    int
	maxPlot  int64
	// the last line's scenario and node (see lookup)
	last     *scenario
	lastNode string
	lastN    int32
}

func newModel() *model {
	return &model{runs: map[string]*scenario{}, maxPlot: 200000}
}

// unlabelled names the scenario of lines without a run label (a node started
// without -run), so reports and file names never have an empty name.
const unlabelled = "unlabelled"

func (m *model) scenario(run string) *scenario {
	s := m.runs[run]
	if s == nil {
		name := run
		if name == "" {
			name = unlabelled
		}
		s = &scenario{name: name, run: run, nodes: map[string]int32{}, member: map[memberKey][]interval{}, open: map[memberKey]int64{},
			openFault: map[faultKey]int64{}, senderAk: map[int32][]int32{}, tlEvery: 1, convIdx: map[string]int32{},
			byID: map[string]int32{}, lastConv: -1}
		m.runs[run] = s
		m.order = append(m.order, run)
	}
	return s
}

// conv interns a conversation name.
func (s *scenario) conv(r *rec) int32 {
	var key []byte
	if len(r.room) > 0 {
		key = r.room
	} else if len(r.to) > 0 {
		key = append([]byte{'@'}, r.to...)
	} else {
		return -1
	}
	if s.lastConv >= 0 && string(key) == s.convs[s.lastConv] {
		return s.lastConv
	}
	if i, ok := s.convIdx[string(key)]; ok {
		s.lastConv = i
		return i
	}
	i := int32(len(s.convs))
	s.convs = append(s.convs, string(key))
	s.convIdx[string(key)] = i
	return i
}

func (s *scenario) node(name string) int32 {
	if i, ok := s.nodes[name]; ok {
		return i
	}
	i := int32(len(s.nodeNames))
	s.nodes[name] = i
	s.nodeNames = append(s.nodeNames, name)
	s.lastTS = append(s.lastTS, 0)
	return i
}

// eventOf returns the event name of a parsed line, or "" for a bad line
// (not a JSON object, truncated, no or unknown event). It returns the
// constant, so no string is allocated per line.
func eventOf(r *rec, ok bool) string {
	if !ok {
		return ""
	}
	switch string(r.event) {
	case wire.EventReceived:
		return wire.EventReceived
	case wire.EventSent:
		return wire.EventSent
	}
	for e := range knownEvents {
		if string(r.event) == e {
			return e
		}
	}
	return ""
}

// lookup returns the scenario and node of a line, remembering the last
// pair: lines come a node's file at a time, so this saves two map lookups
// (and the strings they would need) on almost every line.
func (m *model) lookup(r *rec, create bool) (*scenario, int32) {
	if m.last != nil && string(r.run) == m.last.run && string(r.node) == m.lastNode {
		return m.last, m.lastN
	}
	var s *scenario
	if create {
		s = m.scenario(string(r.run))
	} else if s = m.runs[string(r.run)]; s == nil {
		return nil, -1
	}
	n := s.node(string(r.node))
	m.last, m.lastNode, m.lastN = s, s.nodeNames[n], n
	return s, n
}

// pass1 learns sent messages, memberships and fault windows.
func (m *model) pass1(r *rec, ok bool) {
	m.lines++
	ev := eventOf(r, ok)
	if ev == "" {
		m.badLines++
		return
	}
	ts := r.tsNS
	if ev == wire.EventFault {
		s := m.scenario(string(r.run))
		key := faultKey{string(r.fault), string(r.target)}
		if string(r.phase) == wire.PhaseStart {
			s.openFault[key] = ts
		} else if start, ok := s.openFault[key]; ok {
			delete(s.openFault, key)
			s.faults = append(s.faults, Fault{Name: key.fault, Target: key.target, StartNS: start, EndNS: ts})
		}
		return
	}
	s, n := m.lookup(r, true)
	if ts > s.lastTS[n] {
		s.lastTS[n] = ts
	}
	switch ev {
	case wire.EventSubscribed, wire.EventUnsubscribed:
		conv := s.conv(r)
		if conv < 0 {
			return
		}
		key := memberKey{n, conv}
		if ev == wire.EventSubscribed {
			if _, already := s.open[key]; !already {
				s.open[key] = ts
			}
		} else if from, ok := s.open[key]; ok {
			delete(s.open, key)
			s.member[key] = append(s.member[key], interval{from, ts})
		}
	case wire.EventSent:
		if len(r.id) == 0 {
			return
		}
		if _, dup := s.byID[string(r.id)]; dup {
			return
		}
		msg := sentMsg{sender: n, conv: s.conv(r), sentNS: r.sentNS}
		s.byID[string(r.id)] = int32(len(s.sent))
		s.sent = append(s.sent, msg)
		if r.hasAck {
			a := int32(min(max(r.ackUS, 0), 1<<31-1))
			s.ackUS = append(s.ackUS, a)
			s.senderAk[n] = append(s.senderAk[n], a)
		}
		if s.firstNS == 0 || msg.sentNS < s.firstNS {
			s.firstNS = msg.sentNS
		}
		if msg.sentNS > s.lastNS {
			s.lastNS = msg.sentNS
		}
	}
}

// endPass1 ends every open membership at the node's last log line (a node
// that stopped, or was killed, receives nothing after it), closes open fault
// windows, sets the measured window and prepares pass two.
func (m *model) endPass1(warmup, cooldown int64) {
	for _, s := range m.runs {
		for key, from := range s.open {
			s.member[key] = append(s.member[key], interval{from, s.lastTS[key.node]})
		}
		s.open = map[memberKey]int64{}
		for key, start := range s.openFault {
			s.faults = append(s.faults, Fault{Name: key.fault, Target: key.target, StartNS: start, EndNS: max(s.lastNS, start)})
		}
		s.winFrom, s.winTo = s.firstNS+warmup, s.lastNS-cooldown
		sort.Slice(s.faults, func(i, j int) bool { return s.faults[i].StartNS < s.faults[j].StartNS })
		s.recv = make([]*receiverAcc, len(s.nodeNames))
		for i := range s.recv {
			s.recv[i] = &receiverAcc{lastSeq: map[streamKey]int64{}, perSecond: map[int64]int64{}}
		}
		// Sample the latency-over-time series so a huge run still plots quickly.
		total := int64(len(s.sent)) * int64(max(len(s.nodeNames), 1))
		s.tlEvery = max(1, total/m.maxPlot)
	}
}

// inWindow reports whether a message sent at t is measured.
func (s *scenario) inWindow(t int64) bool { return t >= s.winFrom && t <= s.winTo }

// isMember reports whether node n was subscribed to conv at t.
func (s *scenario) isMember(n, conv int32, t int64) bool {
	for _, iv := range s.member[memberKey{n, conv}] {
		if t >= iv.from && t <= iv.to {
			return true
		}
	}
	return false
}

// expected reports whether node n should have received msg.
func (s *scenario) expected(n int32, msg *sentMsg) bool {
	if msg.conv < 0 {
		return false
	}
	if c := s.convs[msg.conv]; c[0] == '@' {
		return s.nodeNames[n] == c[1:]
	}
	return s.isMember(n, msg.conv, msg.sentNS)
}

// delivery is one received line, for messages.csv.
type delivery struct {
	run, receiver, sender, conv, via string
	seq, sentNS, recvNS              int64
	latencyUS                        int64
	duplicate                        bool
}

// pass2 matches received lines with what was sent.
func (m *model) pass2(r *rec, ok bool, emit func(delivery)) {
	if eventOf(r, ok) != wire.EventReceived {
		return
	}
	via := string(r.via)
	if via == wire.ViaHistory {
		return // shown on join, not a delivery the analysis expects
	}
	s, n := m.lookup(r, false)
	if s == nil {
		return
	}
	if int(n) >= len(s.recv) {
		return // a node that only ever received: it has no memberships either
	}
	acc := s.recv[n]
	sender, fromIdx := string(r.from), int32(-1)
	if i, ok := s.nodes[sender]; ok {
		sender, fromIdx = s.nodeNames[i], i
	}
	conv := s.conv(r)
	convName := ""
	if conv >= 0 {
		convName = s.convs[conv]
	}
	d := delivery{run: s.name, receiver: s.nodeNames[n], sender: sender, conv: convName,
		via: via, seq: r.seq, sentNS: r.sentNS, recvNS: r.recvNS, duplicate: r.duplicate}
	d.latencyUS = (d.recvNS - d.sentNS) / 1000
	var msg *sentMsg
	if idx, ok := s.byID[string(r.id)]; ok {
		msg = &s.sent[idx]
	}
	if msg != nil && !d.duplicate && n < maxNodes {
		if b := uint64(1) << n; msg.got&b != 0 {
			d.duplicate = true
		} else {
			msg.got |= b
		}
	}
	emit(d)
	// The window is over send times; a delivery with no "sent" line has
	// only its own stamp of the send time.
	sentAt := d.sentNS
	if msg != nil {
		sentAt = msg.sentNS
	}
	if !s.inWindow(sentAt) {
		return
	}
	if d.duplicate {
		acc.duplicates++
		return
	}
	if msg == nil {
		s.unmatched++
		return
	}
	key := streamKey{fromIdx, conv, atoi(r.boot)}
	if d.seq > 0 {
		if d.seq < acc.lastSeq[key] {
			acc.reordered++
		} else {
			acc.lastSeq[key] = d.seq
		}
	}
	if d.latencyUS < 0 {
		s.negative++ // the receiver's clock is behind the sender's: counted as 0
	}
	lat := int32(min(max(d.latencyUS, 0), 1<<31-1))
	if via == wire.ViaSync {
		acc.sync = append(acc.sync, lat)
	} else {
		acc.live = append(acc.live, lat)
	}
	if s.nodeNames[msg.sender] == s.nodeNames[n] {
		acc.self = append(acc.self, lat)
	}
	acc.perSecond[d.recvNS/1e9]++
	s.tlCount++
	if s.tlCount%s.tlEvery == 0 {
		pt := point{float64(d.recvNS), float64(lat) / 1000}
		if via == wire.ViaSync {
			s.timeSync = append(s.timeSync, pt)
		} else {
			s.timeline = append(s.timeline, pt)
		}
	}
}
