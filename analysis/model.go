package analysis

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
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

// maxNodes is the most nodes one scenario may have (the width of the
// expected and received bit sets of a message in flight).
const maxNodes = 64

// interval is a membership from its "subscribed" to its "unsubscribed" line;
// to is openEnd while no unsubscribe was seen (it then ends at the node's
// last line, known only when the input has been read).
type interval struct{ from, to int64 }

const openEnd = math.MaxInt64

// memberKey is one node's membership of one conversation.
type memberKey struct {
	node int32
	conv int32
}

type faultKey struct{ fault, target string }

// flight is a message the analysis has seen a line of and not yet finished
// with: it is finished, and forgotten, once its "sent" line and a delivery
// to every node expected to receive it have been read. So memory holds the
// messages in flight (and the lost ones), not the whole run.
type flight struct {
	sentNS  int64
	expect  uint64 // nodes that should receive it (known from the "sent" line)
	got     uint64 // nodes that received it
	conv    int32
	sender  int32
	hasSent bool
	// deliveries read before the "sent" line, counted when it comes (or as
	// unmatched if it never does)
	pend []pending
}

// pending is a first delivery waiting for its message's "sent" line.
type pending struct {
	recvNS, latencyUS int64
	node              int32
	sync, reordered   bool
}

// doneIDs remembers recently finished messages, so that a late delivery of
// one is still matched: a repeat (a redelivery the node did not flag) is a
// duplicate, a first delivery to a node that was not expected to receive it
// counts as received, and a repeated "sent" line is ignored. It is a
// direct-mapped table: a finished message stays until a later one takes its
// slot, about doneSlots finished messages later; memory stays fixed.
type doneIDs struct{ slot []doneMsg }

// doneMsg is what a finished message leaves behind.
type doneMsg struct {
	key, got uint64
	sentNS   int64
	sender   int32
	used     bool
}

const doneSlots = 1 << 16

// get returns the finished message with key k, or nil.
func (d *doneIDs) get(k uint64) *doneMsg {
	if d.slot == nil {
		return nil
	}
	if m := &d.slot[k&(doneSlots-1)]; m.used && m.key == k {
		return m
	}
	return nil
}

func (d *doneIDs) add(k uint64, f *flight) {
	if d.slot == nil {
		d.slot = make([]doneMsg, doneSlots)
	}
	d.slot[k&(doneSlots-1)] = doneMsg{key: k, got: f.got, sentNS: f.sentNS, sender: f.sender, used: true}
}

// scenario collects one run label's data.
type scenario struct {
	name      string
	run       string           // the run label of its lines ("" for name unlabelled)
	nodes     map[string]int32 // node -> index
	nodeNames []string
	lastTS    []int64 // each node's last line (pass two)
	member    map[memberKey][]interval
	open      map[memberKey]int64
	faults    []Fault
	openFault map[faultKey]int64
	// the send times of the first and last "sent" lines, and the measured
	// window (-warmup, -cooldown) over send times
	firstNS, lastNS int64
	sentLines       int64
	winFrom, winTo  int64
	convs           []string // interned conversation names: room, or "@" + recipient
	convIdx         map[string]int32
	// the names as written in messages.csv
	csvName            string
	csvNodes, csvConvs []string
	lastConv           int32 // the last conversation looked up, or -1

	// pass two
	flights map[uint64]int32 // id hash -> index in slab
	// the most messages held at once: what the analysis' memory grows with
	peakInFlight int
	slab         []flight
	free         []int32
	done         doneIDs
	sent         int64
	sentBy       []int64
	ack          hist
	ackBy        []*hist
	recv         []*receiverAcc
	expected     []int64 // per node, over finished messages in the window
	gotExp       []int64 // of those, received
	unmatched    int64
	negative     int64   // deliveries with a negative one-way latency (clock skew)
	timeline     []point // (recv time, latency ms) sample of live deliveries, for plots
	timeSync     []point // the same for deliveries via sync
	tlEvery      int64
	tlCount      int64
	maxPlot      int
}

// Fault is one shaded window in the latency-over-time plot.
type Fault struct {
	Name    string `json:"fault"`
	Target  string `json:"target"`
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
}

type receiverAcc struct {
	live, sync hist // latency µs of first deliveries
	self       hist // latency of own messages: the node's round trip
	duplicates int64
	reordered  int64
	lastSeq    map[streamKey]int64 // highest seq seen per sender stream
	perSecond  map[int64]int64     // unique deliveries per second of receive time
	lastSec    int64               // perSecond's most recent key, and its count not yet added
	lastSecN   int64
}

func (a *receiverAcc) countSecond(sec int64) {
	if sec != a.lastSec || a.lastSecN == 0 {
		a.flushSecond()
		a.lastSec = sec
	}
	a.lastSecN++
}

func (a *receiverAcc) flushSecond() {
	if a.lastSecN > 0 {
		a.perSecond[a.lastSec] += a.lastSecN
		a.lastSecN = 0
	}
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
	maxPlot  int
	seed     maphash.Seed
	err      error // the first fatal problem of pass two
}

func newModel() *model {
	return &model{runs: map[string]*scenario{}, maxPlot: 200000, seed: maphash.MakeSeed()}
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
		s = &scenario{name: name, csvName: csvField(name), run: run, nodes: map[string]int32{}, member: map[memberKey][]interval{}, open: map[memberKey]int64{},
			openFault: map[faultKey]int64{}, tlEvery: 1, convIdx: map[string]int32{}, lastConv: -1,
			flights: map[uint64]int32{}, maxPlot: m.maxPlot}
		m.runs[run] = s
		m.order = append(m.order, run)
	}
	return s
}

// convOf interns a conversation name.
func (s *scenario) convOf(key string) int32 {
	if i, ok := s.convIdx[key]; ok {
		return i
	}
	i := int32(len(s.convs))
	s.convs = append(s.convs, key)
	s.csvConvs = append(s.csvConvs, csvField(key))
	s.convIdx[key] = i
	return i
}

// conv interns a line's conversation.
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
	i, ok := s.convIdx[string(key)]
	if !ok {
		i = s.convOf(string(key))
	}
	s.lastConv = i
	return i
}

// node returns the index of a node, adding it (and its per-node state).
func (s *scenario) node(name string) int32 {
	if i, ok := s.nodes[name]; ok {
		return i
	}
	i := int32(len(s.nodeNames))
	s.nodes[name] = i
	s.nodeNames = append(s.nodeNames, name)
	s.csvNodes = append(s.csvNodes, csvField(name))
	s.lastTS = append(s.lastTS, 0)
	s.sentBy = append(s.sentBy, 0)
	s.ackBy = append(s.ackBy, nil)
	s.recv = append(s.recv, &receiverAcc{lastSeq: map[streamKey]int64{}, perSecond: map[int64]int64{}})
	s.expected = append(s.expected, 0)
	s.gotExp = append(s.gotExp, 0)
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

// cursor remembers the scenario and node of an input's last line: lines
// come a node's file at a time, so this saves two map lookups (and the
// strings they would need) on almost every line.
type cursor struct {
	s    *scenario
	run  string
	node string
	n    int32
}

func (m *model) lookup(c *cursor, r *rec) (*scenario, int32) {
	if c.s != nil && string(r.run) == c.run && string(r.node) == c.node {
		return c.s, c.n
	}
	s := m.scenario(string(r.run))
	n := s.node(string(r.node))
	c.s, c.run, c.node, c.n = s, s.run, s.nodeNames[n], n
	return s, n
}

// fileFacts is what the first pass learns from one file, applied to the
// model in file order afterwards, so files can be read in parallel.
type fileFacts struct {
	events []fact               // memberships, faults, and each node's first line, in file order
	sends  map[string]*sendSpan // per run label
	seen   map[[2]string]bool   // (run, node) pairs already in events
	// lines read, and of those the ones with a known event
	lines, eventLines int64
	// the run labels of the file's membership, fault and "sent" lines:
	// files that share none are merged apart in pass two
	runs map[string]bool
	r    rec
}

// fact is one line of interest to the first pass.
type fact struct {
	event                                 string // a wire event, or "" for a node's first "sent" line
	run, node, conv, fault, target, phase string
	ts                                    int64
}

// sendSpan is the send times of a run's "sent" lines in one file.
type sendSpan struct{ first, last, n int64 }

// pass1 reads the lines that describe a run rather than its messages:
// memberships, fault windows and the send times that bound the measured
// window. It skips "received" lines unparsed, so it is cheap.
func (ff *fileFacts) pass1(line []byte) {
	ff.lines++
	ev := lineEvent(line)
	if len(ev) > 0 && knownEvents[string(ev)] {
		ff.eventLines++
	}
	if len(ev) == 0 || (ev[0] != 's' && ev[0] != 'u' && ev[0] != 'f') || !parseRec(line, &ff.r) {
		return
	}
	r := &ff.r
	e := eventOf(r, true)
	if e != "" && !ff.runs[string(r.run)] {
		if ff.runs == nil {
			ff.runs = map[string]bool{}
		}
		ff.runs[string(r.run)] = true
	}
	switch e {
	case wire.EventFault:
		ff.events = append(ff.events, fact{event: e, run: string(r.run), fault: string(r.fault), target: string(r.target),
			phase: string(r.phase), ts: r.tsNS})
	case wire.EventSubscribed, wire.EventUnsubscribed:
		ff.events = append(ff.events, fact{event: e, run: string(r.run), node: string(r.node), conv: convKey(r), ts: r.tsNS})
	case wire.EventSent:
		if len(r.id) == 0 {
			return
		}
		if ff.seen == nil {
			ff.seen, ff.sends = map[[2]string]bool{}, map[string]*sendSpan{}
		}
		if k := [2]string{string(r.run), string(r.node)}; !ff.seen[k] {
			ff.seen[k] = true
			ff.events = append(ff.events, fact{run: k[0], node: k[1]})
		}
		sp := ff.sends[string(r.run)]
		if sp == nil {
			sp = &sendSpan{first: r.sentNS, last: r.sentNS}
			ff.sends[string(r.run)] = sp
		}
		sp.first, sp.last, sp.n = min(sp.first, r.sentNS), max(sp.last, r.sentNS), sp.n+1
	}
}

// mergeGroups splits the files into groups that share no run label, in the
// order of their first file: pass two merges each group by time on its own,
// so it holds only one scenario's files open at a time (the evaluation's
// results hold seven). A file with events but none that names its run (a
// node's log rotated between its "subscribed" lines) could belong anywhere:
// then every file is merged together.
func mergeGroups(facts []fileFacts) [][]int {
	for i := range facts {
		if facts[i].eventLines > 0 && len(facts[i].runs) == 0 {
			all := make([]int, len(facts))
			for j := range all {
				all[j] = j
			}
			return [][]int{all}
		}
	}
	parent := make([]int, len(facts))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	owner := map[string]int{}
	for i := range facts {
		for run := range facts[i].runs {
			if j, ok := owner[run]; ok {
				a, b := find(i), find(j)
				parent[max(a, b)] = min(a, b)
			} else {
				owner[run] = i
			}
		}
	}
	var groups [][]int
	at := map[int]int{}
	for i := range facts {
		root := find(i)
		g, ok := at[root]
		if !ok {
			g = len(groups)
			at[root] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// convKey is a line's conversation: its room, or "@" and the recipient of
// a direct message ("" for neither).
func convKey(r *rec) string {
	if len(r.room) > 0 {
		return string(r.room)
	}
	if len(r.to) > 0 {
		return "@" + string(r.to)
	}
	return ""
}

// apply adds one file's facts to the model.
func (m *model) apply(ff *fileFacts) {
	for _, f := range ff.events {
		s := m.scenario(f.run)
		switch f.event {
		case wire.EventFault:
			key := faultKey{f.fault, f.target}
			if f.phase == wire.PhaseStart {
				s.openFault[key] = f.ts
			} else if start, ok := s.openFault[key]; ok {
				delete(s.openFault, key)
				s.faults = append(s.faults, Fault{Name: key.fault, Target: key.target, StartNS: start, EndNS: f.ts})
			}
			continue
		}
		n := s.node(f.node)
		if f.event == "" || f.conv == "" {
			continue
		}
		key := memberKey{n, s.convOf(f.conv)}
		if f.event == wire.EventSubscribed {
			if _, already := s.open[key]; !already {
				s.open[key] = f.ts
			}
		} else if from, ok := s.open[key]; ok {
			delete(s.open, key)
			s.member[key] = append(s.member[key], interval{from, f.ts})
		}
	}
	for run, sp := range ff.sends {
		s := m.scenario(run)
		if s.sentLines == 0 || sp.first < s.firstNS {
			s.firstNS = sp.first
		}
		s.lastNS = max(s.lastNS, sp.last)
		s.sentLines += sp.n
	}
}

// lineEvent returns the event name of a raw line without parsing it (empty
// when it has none), for the first pass' filter.
func lineEvent(line []byte) []byte {
	i := bytes.Index(line, eventKey)
	if i < 0 {
		return nil
	}
	v := line[i+len(eventKey):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

var eventKey = []byte(`"event":"`)

// endPass1 leaves memberships without an "unsubscribed" line open (they end
// at the node's last line, known after pass two), closes open fault windows
// and sets the measured window.
func (m *model) endPass1(warmup, cooldown int64) error {
	for _, s := range m.runs {
		if len(s.nodeNames) > maxNodes {
			return fmt.Errorf("scenario %q has %d nodes; the analysis handles at most %d per scenario", s.name, len(s.nodeNames), maxNodes)
		}
		for key, from := range s.open {
			s.member[key] = append(s.member[key], interval{from, openEnd})
		}
		s.open = nil
		for key, start := range s.openFault {
			s.faults = append(s.faults, Fault{Name: key.fault, Target: key.target, StartNS: start, EndNS: max(s.lastNS, start)})
		}
		s.winFrom, s.winTo = s.firstNS+warmup, s.lastNS-cooldown
		sort.Slice(s.faults, func(i, j int) bool { return s.faults[i].StartNS < s.faults[j].StartNS })
	}
	return nil
}

// inWindow reports whether a message sent at t is measured.
func (s *scenario) inWindow(t int64) bool { return t >= s.winFrom && t <= s.winTo }

// expectedAt returns the nodes that should receive a message of conv sent
// at t: a room's members then, or a direct message's recipient. With final
// set, open memberships end at the node's last line.
func (s *scenario) expectedAt(conv int32, t int64, final bool) uint64 {
	if conv < 0 {
		return 0
	}
	if c := s.convs[conv]; c[0] == '@' {
		if n, ok := s.nodes[c[1:]]; ok && n < maxNodes {
			return 1 << n
		}
		return 0
	}
	var mask uint64
	for n := int32(0); n < int32(min(len(s.nodeNames), maxNodes)); n++ {
		for _, iv := range s.member[memberKey{n, conv}] {
			to := iv.to
			if to == openEnd && final {
				to = s.lastTS[n]
			}
			if t >= iv.from && t <= to {
				mask |= 1 << n
				break
			}
		}
	}
	return mask
}

// delivery is one received line, for messages.csv.
type delivery struct {
	run, receiver, sender, conv, via string
	seq, sentNS, recvNS              int64
	latencyUS                        int64
	duplicate                        bool
}

// pass2 counts every line and matches "sent" and "received" lines in the
// order of their time stamps across the inputs, finishing each message as
// soon as everything expected of it has been read.
func (m *model) pass2(r *rec, ok bool, c *cursor, emit func(delivery)) {
	m.lines++
	ev := eventOf(r, ok)
	if ev == "" {
		m.badLines++
		return
	}
	if ev == wire.EventFault {
		return
	}
	s, n := m.lookup(c, r)
	if int(n) >= maxNodes {
		if m.err == nil {
			m.err = fmt.Errorf("scenario %q has more than %d nodes; the analysis handles at most %d per scenario", s.name, maxNodes, maxNodes)
		}
		return
	}
	if r.tsNS > s.lastTS[n] {
		s.lastTS[n] = r.tsNS
	}
	switch ev {
	case wire.EventSent:
		if len(r.id) > 0 {
			m.sentLine(s, n, r)
		}
	case wire.EventReceived:
		if string(r.via) != wire.ViaHistory { // history is shown on join, not a delivery the analysis expects
			m.received(s, n, r, emit)
		}
	}
}

func (m *model) key(id []byte) uint64 { return maphash.Bytes(m.seed, id) }

// flightOf returns the message in flight with key k, or, if it is new and
// not a finished one, adds it; for a finished message it returns what is
// left of it instead.
func (s *scenario) flightOf(k uint64) (int32, *flight, *doneMsg) {
	if i, ok := s.flights[k]; ok {
		return i, &s.slab[i], nil
	}
	if dm := s.done.get(k); dm != nil {
		return -1, nil, dm
	}
	var i int32
	if len(s.free) > 0 {
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
	} else {
		s.slab = append(s.slab, flight{})
		i = int32(len(s.slab) - 1)
	}
	f := &s.slab[i]
	*f = flight{pend: f.pend[:0]}
	s.flights[k] = i
	s.peakInFlight = max(s.peakInFlight, len(s.flights))
	return i, f, nil
}

func (m *model) sentLine(s *scenario, n int32, r *rec) {
	k := m.key(r.id)
	i, f, _ := s.flightOf(k)
	if f == nil || f.hasSent {
		return // a repeated "sent" line
	}
	f.hasSent, f.sentNS, f.sender, f.conv = true, r.sentNS, n, s.conv(r)
	f.expect = s.expectedAt(f.conv, f.sentNS, false)
	if s.inWindow(f.sentNS) {
		s.sent++
		s.sentBy[n]++
		if r.hasAck {
			a := int32(min(max(r.ackUS, 0), 1<<31-1))
			s.ack.add(a)
			if s.ackBy[n] == nil {
				s.ackBy[n] = &hist{}
			}
			s.ackBy[n].add(a)
		}
		for _, p := range f.pend {
			s.count(f, p)
		}
	}
	f.pend = f.pend[:0]
	s.finishIfDone(k, i, f)
}

func (m *model) received(s *scenario, n int32, r *rec, emit func(delivery)) {
	acc := s.recv[n]
	fromIdx, ok := s.nodes[string(r.from)]
	var sender string
	if ok {
		sender = s.csvNodes[fromIdx]
	} else {
		fromIdx, sender = -1, csvField(string(r.from))
	}
	conv := s.conv(r)
	convName := ""
	if conv >= 0 {
		convName = s.csvConvs[conv]
	}
	d := delivery{run: s.csvName, receiver: s.csvNodes[n], sender: sender, conv: convName,
		via: viaOf(r.via), seq: r.seq, sentNS: r.sentNS, recvNS: r.recvNS, duplicate: r.duplicate}
	d.latencyUS = (d.recvNS - d.sentNS) / 1000
	k := m.key(r.id)
	var f *flight
	var fi int32
	if len(r.id) > 0 {
		var dm *doneMsg
		fi, f, dm = s.flightOf(k)
		var got *uint64
		if dm != nil {
			// finished already: what is left of it is enough to match
			got, f = &dm.got, &flight{hasSent: true, sentNS: dm.sentNS, sender: dm.sender}
		} else {
			got = &f.got
		}
		if !d.duplicate {
			if b := uint64(1) << n; *got&b != 0 {
				d.duplicate = true
			} else {
				*got |= b
			}
		}
	}
	emit(d)
	// The window is over send times; until the "sent" line is read, a
	// delivery has only its own stamp of the send time.
	sentAt := d.sentNS
	if f != nil && f.hasSent {
		sentAt = f.sentNS
	}
	if !s.inWindow(sentAt) {
		return
	}
	if d.duplicate {
		acc.duplicates++
		return
	}
	if f == nil {
		s.unmatched++ // no id: it cannot be matched with a "sent" line
		return
	}
	p := pending{recvNS: d.recvNS, latencyUS: d.latencyUS, node: n, sync: string(r.via) == wire.ViaSync}
	key := streamKey{fromIdx, conv, atoi(r.boot)}
	if d.seq > 0 {
		if d.seq < acc.lastSeq[key] {
			p.reordered = true
		} else {
			acc.lastSeq[key] = d.seq
		}
	}
	if !f.hasSent {
		f.pend = append(f.pend, p)
		return
	}
	s.count(f, p)
	if fi >= 0 {
		s.finishIfDone(k, fi, f)
	}
}

// viaOf returns how a message arrived, CSV-quoted, without allocating for
// the usual values.
func viaOf(via []byte) string {
	switch string(via) {
	case wire.ViaLive:
		return wire.ViaLive
	case wire.ViaSync:
		return wire.ViaSync
	}
	return csvField(string(via))
}

// count adds a first delivery of a measured message to the figures.
func (s *scenario) count(f *flight, p pending) {
	acc := s.recv[p.node]
	if p.reordered {
		acc.reordered++
	}
	if p.latencyUS < 0 {
		s.negative++ // the receiver's clock is behind the sender's: counted as 0
	}
	lat := int32(min(max(p.latencyUS, 0), 1<<31-1))
	if p.sync {
		acc.sync.add(lat)
	} else {
		acc.live.add(lat)
	}
	if f.sender == p.node {
		acc.self.add(lat)
	}
	acc.countSecond(p.recvNS / 1e9)
	s.tlCount++
	if s.tlCount%s.tlEvery == 0 {
		pt := point{float64(p.recvNS), float64(lat) / 1000}
		if p.sync {
			s.timeSync = append(s.timeSync, pt)
		} else {
			s.timeline = append(s.timeline, pt)
		}
		if len(s.timeline)+len(s.timeSync) > s.maxPlot {
			s.timeline, s.timeSync = halve(s.timeline), halve(s.timeSync)
			s.tlEvery *= 2
		}
	}
}

// halve keeps every other point: the latency-over-time sample stays under
// maxPlot points on a run of any length.
func halve(pts []point) []point {
	out := pts[:0]
	for i := 1; i < len(pts); i += 2 {
		out = append(out, pts[i])
	}
	return out
}

// finishIfDone forgets a message once its "sent" line and every expected
// delivery have been read.
func (s *scenario) finishIfDone(k uint64, i int32, f *flight) {
	if !f.hasSent || f.got&f.expect != f.expect {
		return
	}
	s.finish(f)
	delete(s.flights, k)
	s.free = append(s.free, i)
	s.done.add(k, f)
}

// finish adds a message's expected and received deliveries to the figures.
func (s *scenario) finish(f *flight) {
	if !s.inWindow(f.sentNS) {
		return
	}
	for e := f.expect; e != 0; e &= e - 1 {
		n := bits.TrailingZeros64(e)
		s.expected[n]++
		if f.got&(1<<n) != 0 {
			s.gotExp[n]++
		}
	}
}

// endPass2 settles the messages still in flight: with every node's last
// line now known, a message is expected at the nodes that were members
// when it was sent and still running; what they did not receive is lost.
// Deliveries whose "sent" line never came are unmatched.
func (m *model) endPass2() {
	for _, s := range m.runs {
		for _, i := range s.flights {
			f := &s.slab[i]
			if !f.hasSent {
				s.unmatched += int64(len(f.pend))
				continue
			}
			f.expect = s.expectedAt(f.conv, f.sentNS, true)
			s.finish(f)
		}
		s.flights, s.slab, s.free = nil, nil, nil
		for _, acc := range s.recv {
			acc.flushSecond()
		}
	}
}
