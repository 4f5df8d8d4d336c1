package analysis

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// knownEvents are the event names of wire; any other is a bad line.
var knownEvents = []string{nodelog.EventReceived, nodelog.EventSent, nodelog.EventConnected, nodelog.EventConnectionLost,
	nodelog.EventReconnecting, nodelog.EventReconnected, nodelog.EventSubscribed, nodelog.EventUnsubscribed,
	nodelog.EventSendFailed, nodelog.EventGap, nodelog.EventMalformed, nodelog.EventPresence, nodelog.EventSync,
	nodelog.EventBenchStart, nodelog.EventBenchEnd, nodelog.EventFault, nodelog.EventShutdown, nodelog.EventSubscribeFailed,
	nodelog.EventClientLog, nodelog.EventScenario}

// maxNodes is the most nodes one scenario may have (the width of the
// expected and received bit sets of a message in flight).
const maxNodes = 64

// interval is a membership from its "subscribed" to its "unsubscribed" line
// (openEnd: until the node's last line).
type interval struct{ from, to int64 }

const openEnd = math.MaxInt64

// memberKey is one node's membership of one conversation.
type memberKey struct{ node, conv int32 }

type faultKey struct{ fault, target string }

// scenario collects one run label's data.
type scenario struct {
	name      string
	run       string   // the run label of its lines ("" for name unlabelled)
	nodes     interned // its nodes, in the order first seen
	member    map[memberKey][]interval
	open      map[memberKey]int64
	faults    []Fault
	openFault map[faultKey]int64
	groups    []string // the comparisons it belongs to, from the drill log
	// send times of the first and last "sent" lines; the measured window
	firstNS, lastNS int64
	sentLines       int64
	winFrom, winTo  int64
	convs           interned // its conversations: room, or "@" + recipient
	csvName         string   // its name as written in messages.csv
	lastConv        int32    // the last conversation looked up, or -1

	// pass two
	flights      map[uint64]int32 // id hash -> index in slab
	peakInFlight int              // the most messages held at once
	slab         []flight
	free         []int32
	done         doneIDs
	sent         int64
	ack          hist
	acc          []*nodeAcc // per node
	unmatched    int64
	negative     int64           // deliveries with a negative one-way latency (clock skew)
	bytesRecv    int64           // bytes of the measured first deliveries (envelopes as sent)
	timeline     []point         // (recv time, latency ms) sample of live deliveries, for plots
	timeSync     []point         // the same for deliveries via sync
	perSecond    map[int64]int64 // measured first deliveries per second of receive time
	tlEvery      int64
	tlCount      int64
}

// maxPlot bounds the latency-over-time sample of a scenario.
const maxPlot = 200000

// Fault is one shaded window in the latency-over-time plot.
type Fault struct {
	Name    string `json:"fault"`
	Target  string `json:"target"`
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
}

// nodeAcc is one node's figures and state.
type nodeAcc struct {
	lastTS     int64 // the node's last line (pass two)
	ended      bool  // whether lastTS is final: the node's log has been read to its end
	sent       int64 // measured messages it sent
	ack        hist  // their publish-ack latencies
	expected   int64 // measured finished messages it should receive
	gotExp     int64 // of those, received
	live, sync hist  // latency µs of first deliveries
	self       hist  // latency of own messages: the node's round trip
	duplicates int64
	reordered  int64
	lastSeq    map[streamKey]int64 // highest seq seen per sender stream
	waits      waits               // when first deliveries came, for the longest wait
}

// point is an (x, y) pair: a plot's point, as its golden files hold it.
type point = [2]float64

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
	seed     maphash.Seed
	err      error // the first fatal problem of pass two
}

// unlabelled names the scenario of lines without a run label.
const unlabelled = "unlabelled"

func (m *model) scenario(run string) *scenario {
	s := m.runs[run]
	if s == nil {
		name := cmp.Or(run, unlabelled)
		s = &scenario{name: name, csvName: csvField(name), run: run, member: map[memberKey][]interval{}, open: map[memberKey]int64{},
			faults: []Fault{}, openFault: map[faultKey]int64{}, tlEvery: 1, lastConv: -1,
			flights: map[uint64]int32{}, perSecond: map[int64]int64{}}
		m.runs[run] = s
		m.order = append(m.order, run)
	}
	return s
}

// interned numbers names (of nodes or conversations) in order of first
// appearance, with their form as written in messages.csv.
type interned struct {
	index     map[string]int32
	list, csv []string
}

// add returns name's index, adding it if it is new.
func (ns *interned) add(name []byte) int32 {
	if i, ok := ns.index[string(name)]; ok {
		return i
	}
	if ns.index == nil {
		ns.index = map[string]int32{}
	}
	i, str := int32(len(ns.list)), string(name)
	ns.index[str] = i
	ns.list, ns.csv = append(ns.list, str), append(ns.csv, csvField(str))
	return i
}

// convKey is a line's conversation: its room, or "@" and the recipient of
// a direct message (empty for neither).
func convKey(r *rec) []byte {
	if len(r.room) == 0 && len(r.to) > 0 {
		return append([]byte{'@'}, r.to...)
	}
	return r.room
}

// conv interns a line's conversation (see convKey; -1 for none).
func (s *scenario) conv(r *rec) int32 {
	key := convKey(r)
	if len(key) == 0 {
		return -1
	}
	if s.lastConv < 0 || string(key) != s.convs.list[s.lastConv] {
		s.lastConv = s.convs.add(key)
	}
	return s.lastConv
}

// node returns the index of a node, adding it (and its per-node state).
func (s *scenario) node(name string) int32 {
	i := s.nodes.add([]byte(name))
	if int(i) == len(s.acc) {
		s.acc = append(s.acc, &nodeAcc{lastSeq: map[streamKey]int64{}})
	}
	return i
}

// eventName returns the known event named ev, or "": the constant, so no
// string is allocated per line.
func eventName(ev []byte) string {
	if i := slices.Index(knownEvents, string(ev)); i >= 0 {
		return knownEvents[i]
	}
	return ""
}

// cursor remembers the scenario and node of an input's last line: lines
// come a node's file at a time, so it saves two map lookups a line.
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
	c.s, c.run, c.node, c.n = s, s.run, s.nodes.list[n], n
	return s, n
}

// inWindow reports whether a message sent at t is measured.
func (s *scenario) inWindow(t int64) bool { return t >= s.winFrom && t <= s.winTo }

// expectedAt returns the nodes that should receive a message of conv sent
// at t: a room's members, or a direct message's recipient. With final set,
// or once a node's log has ended, its memberships end at its last line.
func (s *scenario) expectedAt(conv int32, t int64, final bool) uint64 {
	if conv < 0 {
		return 0
	}
	if c := s.convs.list[conv]; c[0] == '@' {
		n, ok := s.nodes.index[c[1:]]
		if !ok || n >= maxNodes || ((final || s.acc[n].ended) && t > s.acc[n].lastTS) {
			return 0 // an unknown recipient, or one whose log had ended
		}
		return 1 << n
	}
	var mask uint64
	for n := int32(0); n < int32(min(len(s.nodes.list), maxNodes)); n++ {
		for _, iv := range s.member[memberKey{n, conv}] {
			to := iv.to
			if to == openEnd && (final || s.acc[n].ended) {
				to = s.acc[n].lastTS
			}
			if t >= iv.from && t <= to {
				mask |= 1 << n
				break
			}
		}
	}
	return mask
}
