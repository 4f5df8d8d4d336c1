package analysis

import (
	"fmt"
	"hash/maphash"
	"math/bits"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// flight is a message seen but not finished: it is forgotten once its
// "sent" line and a delivery to every node expected to receive it have been
// read, so memory holds the messages in flight, not the run.
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
	recvNS, latencyUS, bytes int64
	node                     int32
	sync, reordered          bool
}

// doneIDs remembers recently finished messages, so that a late delivery of
// one is still matched (as a duplicate, or as received by a node not
// expected to) and a repeated "sent" line is ignored. It is a direct-mapped
// table of fixed size: a later message takes the slot.
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
	if i := k & (doneSlots - 1); d.slot != nil && d.slot[i].used && d.slot[i].key == k {
		return &d.slot[i]
	}
	return nil
}

func (d *doneIDs) add(k uint64, f *flight) {
	if d.slot == nil {
		d.slot = make([]doneMsg, doneSlots)
	}
	d.slot[k&(doneSlots-1)] = doneMsg{key: k, got: f.got, sentNS: f.sentNS, sender: f.sender, used: true}
}

// delivery is one received line, for messages.csv.
type delivery struct {
	run, receiver, sender, conv, via string
	seq, sentNS, recvNS              int64
	latencyUS                        int64
	duplicate                        bool
}

// pass2 counts a line and matches "sent" and "received" lines, finishing
// each message as soon as everything expected of it has been read.
func (m *model) pass2(r *rec, ok bool, c *cursor, emit func(delivery)) {
	m.lines++
	ev := eventName(r.event)
	if !ok || ev == "" {
		m.badLines++
		return
	}
	if isDrillEvent(ev) {
		return
	}
	s, n := m.lookup(c, r)
	if int(n) >= maxNodes {
		if m.err == nil {
			m.err = fmt.Errorf("scenario %q has more than %d nodes; the analysis handles at most %d per scenario", s.name, maxNodes, maxNodes)
		}
		return
	}
	s.acc[n].lastTS = max(s.acc[n].lastTS, r.tsNS)
	switch ev {
	case nodelog.EventSent:
		if len(r.id) > 0 {
			m.sentLine(s, n, r)
		}
	case nodelog.EventReceived:
		if string(r.via) != nodelog.ViaHistory { // history is shown on join, not a delivery the analysis expects
			m.received(s, n, r, emit)
		}
	}
}

// flightOf returns the message in flight with key k, or what is left of it
// if it is finished; with add set, a message it finds neither of is added.
func (s *scenario) flightOf(k uint64, add bool) (int32, *flight, *doneMsg) {
	if i, ok := s.flights[k]; ok {
		return i, &s.slab[i], nil
	}
	if dm := s.done.get(k); dm != nil || !add {
		return -1, nil, dm
	}
	i := int32(len(s.slab))
	if len(s.free) > 0 {
		i, s.free = s.free[len(s.free)-1], s.free[:len(s.free)-1]
	} else {
		s.slab = append(s.slab, flight{})
	}
	f := &s.slab[i]
	*f = flight{pend: f.pend[:0]}
	s.flights[k] = i
	s.peakInFlight = max(s.peakInFlight, len(s.flights))
	return i, f, nil
}

func (m *model) sentLine(s *scenario, n int32, r *rec) {
	k := maphash.Bytes(m.seed, r.id)
	i, f, _ := s.flightOf(k, true)
	if f == nil || f.hasSent {
		return // a repeated "sent" line
	}
	f.hasSent, f.sentNS, f.sender, f.conv = true, r.sentNS, n, s.conv(r)
	f.expect = s.expectedAt(f.conv, f.sentNS, false)
	if s.inWindow(f.sentNS) {
		s.sent++
		s.acc[n].sent++
		if r.hasAck {
			a := int32(min(max(r.ackUS, 0), 1<<31-1))
			s.ack.add(a)
			s.acc[n].ack.add(a)
		}
		for _, p := range f.pend {
			s.count(f, p)
		}
	}
	f.pend = f.pend[:0]
	s.finishIfDone(k, i, f)
}

// received matches one "received" line with its message and counts it: a
// first delivery, a duplicate, or unmatched.
func (m *model) received(s *scenario, n int32, r *rec, emit func(delivery)) {
	d, fromIdx, conv := s.deliveryOf(n, r)
	k, fi, f := m.matchDelivery(s, n, fromIdx, r, &d)
	if !d.duplicate {
		s.acc[n].waits.add(d.recvNS, s.winFrom, s.winTo)
	}
	emit(d)
	s.countDelivery(n, fromIdx, conv, r, d, k, fi, f)
}

// deliveryOf is the messages.csv row of node n's "received" line r, with
// the sender's index (-1 for a node without a log) and the conversation.
func (s *scenario) deliveryOf(n int32, r *rec) (d delivery, fromIdx, conv int32) {
	fromIdx, ok := s.nodes.index[string(r.from)]
	var sender string
	if ok {
		sender = s.nodes.csv[fromIdx]
	} else {
		fromIdx, sender = -1, csvField(string(r.from))
	}
	conv = s.conv(r)
	convName := ""
	if conv >= 0 {
		convName = s.convs.csv[conv]
	}
	d = delivery{run: s.csvName, receiver: s.nodes.csv[n], sender: sender, conv: convName,
		via: viaOf(r.via), seq: r.seq, sentNS: r.sentNS, recvNS: r.recvNS, duplicate: r.duplicate}
	d.latencyUS = (d.recvNS - d.sentNS) / 1000
	return d, fromIdx, conv
}

// matchDelivery finds the message of a delivery (in flight, finished, or
// new) and marks node n as having received it; a repeat at n becomes a
// duplicate. It returns the message's key, slot (-1 when finished or
// untracked) and flight (nil when there is no message to match).
func (m *model) matchDelivery(s *scenario, n, fromIdx int32, r *rec, d *delivery) (uint64, int32, *flight) {
	if len(r.id) == 0 {
		return 0, -1, nil
	}
	k := maphash.Bytes(m.seed, r.id)
	// One flagged by the node, or from a node whose log has ended (its
	// "sent" line will not come), is matched but never the start of a
	// message to track.
	track := !d.duplicate && (fromIdx < 0 || !s.acc[fromIdx].ended)
	fi, f, dm := s.flightOf(k, track)
	if track && f != nil && !f.hasSent {
		f.sender = fromIdx // until the "sent" line says so: whose log must hold it
	}
	var got *uint64
	if dm != nil {
		// finished already: what is left of it is enough to match
		got, f = &dm.got, &flight{hasSent: true, sentNS: dm.sentNS, sender: dm.sender}
	} else if f != nil {
		got = &f.got
	}
	if !d.duplicate && got != nil {
		if b := uint64(1) << n; *got&b != 0 {
			d.duplicate = true
		} else {
			*got |= b
		}
	}
	return k, fi, f
}

// countDelivery adds node n's delivery d of message f (key k, slot fi) to
// the figures, or holds it until the "sent" line comes.
func (s *scenario) countDelivery(n, fromIdx, conv int32, r *rec, d delivery, k uint64, fi int32, f *flight) {
	acc := s.acc[n]
	// The window is over send times; until the "sent" line is read, a
	// delivery has only its own stamp of the send time.
	sentAt := d.sentNS
	if f != nil && f.hasSent {
		sentAt = f.sentNS
	}
	measured := s.inWindow(sentAt)
	if d.duplicate {
		if measured {
			acc.duplicates++
		}
		return
	}
	if f == nil {
		s.unmatched++ // no id, or its sender's log has ended: no "sent" line to match, whenever it was sent
		return
	}
	p := pending{recvNS: d.recvNS, latencyUS: d.latencyUS, bytes: r.bytes, node: n, sync: string(r.via) == nodelog.ViaSync}
	if key := (streamKey{fromIdx, conv, atoi(r.boot)}); measured && d.seq > 0 {
		if d.seq < acc.lastSeq[key] {
			p.reordered = true
		} else {
			acc.lastSeq[key] = d.seq
		}
	}
	if !f.hasSent {
		// counted when the "sent" line comes (if it is in the window), else unmatched
		f.pend = append(f.pend, p)
		return
	}
	if measured {
		s.count(f, p)
	}
	if fi >= 0 {
		s.finishIfDone(k, fi, f) // out of the window too: finish does not count it, memory lets it go
	}
}

// viaOf returns how a message arrived, CSV-quoted, without allocating for
// the usual values.
func viaOf(via []byte) string {
	switch string(via) {
	case nodelog.ViaLive:
		return nodelog.ViaLive
	case nodelog.ViaSync:
		return nodelog.ViaSync
	}
	return csvField(string(via))
}

// count adds a first delivery of a measured message to the figures.
func (s *scenario) count(f *flight, p pending) {
	acc := s.acc[p.node]
	if p.reordered {
		acc.reordered++
	}
	s.bytesRecv += p.bytes
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
	s.perSecond[p.recvNS/1e9]++
	s.tlCount++
	if s.tlCount%s.tlEvery == 0 {
		pt := point{float64(p.recvNS), float64(lat) / 1000}
		if p.sync {
			s.timeSync = append(s.timeSync, pt)
		} else {
			s.timeline = append(s.timeline, pt)
		}
		if len(s.timeline)+len(s.timeSync) > maxPlot {
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
	s.done.add(k, f)
	s.release(k, i)
}

// release forgets the message in flight with key k in slot i.
func (s *scenario) release(k uint64, i int32) {
	delete(s.flights, k)
	s.free = append(s.free, i)
}

// finish adds a message's expected and received deliveries to the figures.
func (s *scenario) finish(f *flight) {
	if !s.inWindow(f.sentNS) {
		return
	}
	for e := f.expect; e != 0; e &= e - 1 {
		n := bits.TrailingZeros64(e)
		s.acc[n].expected++
		if f.got&(1<<n) != 0 {
			s.acc[n].gotExp++
		}
	}
}

// nodeEnded settles the messages waiting for a node whose log has been
// read to its end: a node that crashed and never came back would otherwise
// hold every later message until the end of the run.
func (m *model) nodeEnded(run, node string) {
	s := m.runs[run]
	if s == nil {
		return
	}
	n, ok := s.nodes.index[node]
	if !ok || s.acc[n].ended {
		return
	}
	s.acc[n].ended = true
	if n >= maxNodes {
		return
	}
	bit := uint64(1) << n
	for k, i := range s.flights {
		f := &s.slab[i]
		switch {
		case !f.hasSent && f.sender == n:
			// its sender's log has ended without its "sent" line
			s.unmatched += int64(len(f.pend))
			s.release(k, i)
		case f.hasSent && f.expect&bit != 0 && f.got&bit == 0 && f.sentNS > s.acc[n].lastTS:
			f.expect = s.expectedAt(f.conv, f.sentNS, false)
			s.finishIfDone(k, i, f)
		}
	}
}

// endPass2 settles the messages still in flight, now that every node's
// last line is known: what the expected nodes did not receive is lost, and
// deliveries whose "sent" line never came are unmatched.
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
	}
}
