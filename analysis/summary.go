package analysis

import (
	"maps"
	"math"
	"slices"
)

// Summary is summary.json.
type Summary struct {
	Scenarios []ScenarioSummary `json:"scenarios"`
	Input     InputSummary      `json:"input"`
}

// InputSummary counts what was read.
type InputSummary struct {
	Lines    int64 `json:"lines"`
	BadLines int64 `json:"bad_lines"`
	Files    int   `json:"files"`
}

// Latency is a distribution in milliseconds: count, min, mean and max are
// exact; percentiles are nearest rank, exact below 2.048 ms, above at most
// 0.1% low.
type Latency struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// ScenarioSummary is one run label's figures.
type ScenarioSummary struct {
	Name string `json:"name"`
	// Groups are the comparisons the scenario takes part in (from the
	// evaluation's drill log); none for a scenario compared with all.
	Groups []string `json:"groups,omitempty"`
	Sent   int64    `json:"sent"`
	Deliveries
	// Unmatched deliveries have no "sent" line (e.g. mosquitto_pub).
	Unmatched int64 `json:"unmatched"`
	// NegativeLatencies counts deliveries stamped before they were sent
	// (the receiver's clock behind the sender's); their latency counts as 0.
	NegativeLatencies int64   `json:"negative_latencies"`
	LatencyMS         Latency `json:"latency_ms"`
	LiveLatencyMS     Latency `json:"live_latency_ms"`
	SyncLatencyMS     Latency `json:"sync_latency_ms"`
	AckLatencyMS      Latency `json:"ack_latency_ms"`
	// RoundTripMS is the latency of nodes' own messages back to themselves:
	// send and receive stamped by one process, so no clock comparison.
	RoundTripMS        Latency `json:"round_trip_ms"`
	ThroughputMsgsPerS float64 `json:"throughput_msgs_per_s"`
	// ThroughputMBPerS is the bytes of the measured first deliveries (the
	// envelopes as published) per second of the window, in 10^6 bytes.
	ThroughputMBPerS float64 `json:"throughput_mb_per_s"`
	WindowS          float64 `json:"window_s"`
	// LongestWaitMS is the most of the receivers' LongestWaitMS, and
	// LongestWaitNode the node that waited it.
	LongestWaitMS   float64           `json:"longest_wait_ms"`
	LongestWaitNode string            `json:"longest_wait_node,omitempty"`
	Faults          []Fault           `json:"faults"`
	Receivers       []ReceiverSummary `json:"receivers"`
	Senders         []SenderSummary   `json:"senders"`

	// for the plots: deliveries per second from throughputT0 (ns), every
	// first delivery's latency, and sampled (receive time, latency) points
	throughput         []point
	throughputT0       int64
	all                *hist
	timeLive, timeSync []point
}

// Deliveries are the counts of a scenario, or of one receiver in it; in
// JSON their fields sit with those of the summary that holds them.
type Deliveries struct {
	// Expected counts each message once per node subscribed to its room
	// when it was sent (the sender included: it receives its own messages).
	Expected   int64 `json:"expected"`
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Reordered  int64 `json:"reordered"`
	// ReceivedLive and ReceivedSync split Received by how messages arrived.
	ReceivedLive int64 `json:"received_live"`
	ReceivedSync int64 `json:"received_sync"`
}

// add adds o's counts to d.
func (d *Deliveries) add(o Deliveries) {
	d.Expected, d.Received, d.Lost = d.Expected+o.Expected, d.Received+o.Received, d.Lost+o.Lost
	d.Duplicates, d.Reordered = d.Duplicates+o.Duplicates, d.Reordered+o.Reordered
	d.ReceivedLive, d.ReceivedSync = d.ReceivedLive+o.ReceivedLive, d.ReceivedSync+o.ReceivedSync
}

// ReceiverSummary is one node's deliveries in a scenario.
type ReceiverSummary struct {
	Node string `json:"node"`
	Deliveries
	LatencyMS Latency `json:"latency_ms"`
	// LongestWaitMS is the longest the node went without a first delivery
	// while the load ran: an outage as the node lived it.
	LongestWaitMS float64 `json:"longest_wait_ms"`
}

// SenderSummary is one node's sending in a scenario.
type SenderSummary struct {
	Node         string  `json:"node"`
	Sent         int64   `json:"sent"`
	AckLatencyMS Latency `json:"ack_latency_ms"`
}

func ms(us int32) float64 { return round3(float64(us) / 1000) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// summarize computes the figures of every scenario, in the order first seen.
func (m *model) summarize() Summary {
	out := Summary{Input: InputSummary{Lines: m.lines, BadLines: m.badLines, Files: m.files}}
	for _, name := range m.order {
		s := m.runs[name]
		if s.sentLines == 0 {
			continue // e.g. only a drill log, or nodes that never sent
		}
		out.Scenarios = append(out.Scenarios, s.summarize())
	}
	return out
}

func (s *scenario) summarize() ScenarioSummary {
	ss := ScenarioSummary{Name: s.name, Groups: s.groups, Faults: s.faults, Sent: s.sent, Unmatched: s.unmatched,
		NegativeLatencies: s.negative, timeLive: s.timeline, timeSync: s.timeSync}
	var live, sync, self hist
	for n, acc := range s.acc {
		r := ReceiverSummary{Node: s.nodes.list[n], Deliveries: Deliveries{Expected: acc.expected,
			Received: acc.live.n + acc.sync.n, Lost: acc.expected - acc.gotExp, Duplicates: acc.duplicates,
			Reordered: acc.reordered, ReceivedLive: acc.live.n, ReceivedSync: acc.sync.n}}
		var mine hist
		mine.merge(&acc.live)
		mine.merge(&acc.sync)
		live.merge(&acc.live)
		sync.merge(&acc.sync)
		self.merge(&acc.self)
		r.LatencyMS = mine.latency()
		r.LongestWaitMS = s.longestWait(int32(n))
		if r.Expected > 0 || r.Received > 0 || r.Duplicates > 0 {
			ss.Receivers = append(ss.Receivers, r)
			if r.LongestWaitMS > ss.LongestWaitMS || ss.LongestWaitNode == "" {
				ss.LongestWaitMS, ss.LongestWaitNode = r.LongestWaitMS, r.Node
			}
		}
		ss.Deliveries.add(r.Deliveries)
		if acc.sent > 0 || acc.ack.n > 0 {
			ss.Senders = append(ss.Senders, SenderSummary{Node: r.Node, Sent: acc.sent, AckLatencyMS: acc.ack.latency()})
		}
	}
	ss.all = &hist{}
	ss.all.merge(&live)
	ss.all.merge(&sync)
	ss.LatencyMS = ss.all.latency()
	ss.LiveLatencyMS = live.latency()
	ss.SyncLatencyMS = sync.latency()
	ss.AckLatencyMS = s.ack.latency()
	ss.RoundTripMS = self.latency()
	ss.WindowS = round3(float64(max(s.winTo-s.winFrom, 0)) / 1e9) // -warmup and -cooldown may leave nothing
	if ss.WindowS > 0 {
		ss.ThroughputMsgsPerS = round3(float64(ss.Received) / ss.WindowS)
		ss.ThroughputMBPerS = math.Round(float64(s.bytesRecv)/ss.WindowS) / 1e6 // to the byte per second
	}
	ss.throughput, ss.throughputT0 = throughputSeries(s.perSecond)
	return ss
}

// maxFilledSeconds bounds the throughput series' filled-in seconds: a bogus
// receive stamp must not make billions of them.
const maxFilledSeconds = 1 << 20

// throughputSeries turns deliveries per second of receive time into the
// plotted series, seconds since the first (returned in ns) with every
// second present, so an outage shows as a drop to zero.
func throughputSeries(perSecond map[int64]int64) (pts []point, t0 int64) {
	if len(perSecond) == 0 {
		return nil, 0
	}
	secs := slices.Sorted(maps.Keys(perSecond))
	first, last := secs[0], secs[len(secs)-1]
	if last-first < maxFilledSeconds {
		secs = secs[:0]
		for sec := first; sec <= last; sec++ {
			secs = append(secs, sec)
		}
	}
	for _, sec := range secs {
		pts = append(pts, point{float64(sec - first), float64(perSecond[sec])})
	}
	return pts, first * 1e9
}
