package analysis

import (
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

// Latency is a distribution in milliseconds, from all samples (exact).
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
	Sent int64  `json:"sent"`
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
	RoundTripMS        Latency           `json:"round_trip_ms"`
	ThroughputMsgsPerS float64           `json:"throughput_msgs_per_s"`
	WindowS            float64           `json:"window_s"`
	Faults             []Fault           `json:"faults"`
	Receivers          []ReceiverSummary `json:"receivers"`
	Senders            []SenderSummary   `json:"senders"`

	throughput []point // delivered messages per second, for the plot
	all        []int32
}

// ReceiverSummary is one node's deliveries in a scenario.
type ReceiverSummary struct {
	Node         string  `json:"node"`
	Expected     int64   `json:"expected"`
	Received     int64   `json:"received"`
	Lost         int64   `json:"lost"`
	Duplicates   int64   `json:"duplicates"`
	Reordered    int64   `json:"reordered"`
	ReceivedLive int64   `json:"received_live"`
	ReceivedSync int64   `json:"received_sync"`
	LatencyMS    Latency `json:"latency_ms"`
}

// SenderSummary is one node's sending in a scenario.
type SenderSummary struct {
	Node         string  `json:"node"`
	Sent         int64   `json:"sent"`
	AckLatencyMS Latency `json:"ack_latency_ms"`
}

// latencyOf computes exact nearest-rank percentiles of samples in µs,
// reported in ms. It sorts samples in place.
func latencyOf(samples []int32) Latency {
	n := len(samples)
	if n == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum float64
	for _, v := range samples {
		sum += float64(v)
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(n))) - 1
		return ms(samples[min(max(i, 0), n-1)])
	}
	return Latency{N: n, Min: ms(samples[0]), Mean: round3(sum / float64(n) / 1000), P50: rank(50), P90: rank(90),
		P95: rank(95), P99: rank(99), P999: rank(99.9), Max: ms(samples[n-1])}
}

func ms(us int32) float64 { return round3(float64(us) / 1000) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// summarize computes the figures of every scenario, in the order first seen.
func (m *model) summarize() Summary {
	out := Summary{Input: InputSummary{Lines: m.lines, BadLines: m.badLines, Files: m.files}}
	for _, name := range m.order {
		s := m.runs[name]
		if len(s.sent) == 0 {
			continue // e.g. only a drill log, or nodes that never sent
		}
		out.Scenarios = append(out.Scenarios, s.summarize())
	}
	return out
}

func (s *scenario) summarize() ScenarioSummary {
	ss := ScenarioSummary{Name: s.name, Faults: s.faults}
	if ss.Faults == nil {
		ss.Faults = []Fault{}
	}
	expected := make([]int64, len(s.nodeNames))
	got := make([]int64, len(s.nodeNames))
	for i := range s.sent {
		msg := &s.sent[i]
		if !s.inWindow(msg.sentNS) {
			continue
		}
		ss.Sent++
		for n := range s.nodeNames {
			if s.expected(int32(n), msg) {
				expected[n]++
				if msg.got&(1<<n) != 0 {
					got[n]++
				}
			}
		}
	}
	var all, live, sync, self []int32
	perSecond := map[int64]int64{}
	for n, acc := range s.recv {
		r := ReceiverSummary{Node: s.nodeNames[n], Expected: expected[n], Duplicates: acc.duplicates,
			Reordered: acc.reordered, ReceivedLive: int64(len(acc.live)), ReceivedSync: int64(len(acc.sync))}
		r.Received = r.ReceivedLive + r.ReceivedSync
		r.Lost = expected[n] - got[n]
		mine := append(append([]int32(nil), acc.live...), acc.sync...)
		all = append(all, mine...)
		live = append(live, acc.live...)
		sync = append(sync, acc.sync...)
		self = append(self, acc.self...)
		r.LatencyMS = latencyOf(mine)
		for sec, c := range acc.perSecond {
			perSecond[sec] += c
		}
		if r.Expected > 0 || r.Received > 0 || r.Duplicates > 0 {
			ss.Receivers = append(ss.Receivers, r)
		}
		ss.Expected += r.Expected
		ss.Received += r.Received
		ss.Lost += r.Lost
		ss.Duplicates += r.Duplicates
		ss.Reordered += r.Reordered
		ss.ReceivedLive += r.ReceivedLive
		ss.ReceivedSync += r.ReceivedSync
	}
	for n := range s.nodeNames {
		ak, ok := s.senderAk[int32(n)]
		var sent int64
		for _, msg := range s.sent {
			if msg.sender == int32(n) && s.inWindow(msg.sentNS) {
				sent++
			}
		}
		if sent > 0 || ok {
			ss.Senders = append(ss.Senders, SenderSummary{Node: s.nodeNames[n], Sent: sent, AckLatencyMS: latencyOf(ak)})
		}
	}
	ss.Unmatched = s.unmatched
	ss.NegativeLatencies = s.negative
	ss.LatencyMS = latencyOf(all)
	ss.LiveLatencyMS = latencyOf(live)
	ss.SyncLatencyMS = latencyOf(sync)
	ss.AckLatencyMS = latencyOf(append([]int32(nil), s.ackUS...))
	ss.RoundTripMS = latencyOf(self)
	ss.WindowS = round3(float64(s.winTo-s.winFrom) / 1e9)
	if ss.WindowS > 0 {
		ss.ThroughputMsgsPerS = round3(float64(ss.Received) / ss.WindowS)
	}
	ss.throughput = throughputSeries(perSecond)
	ss.all = all
	return ss
}

// maxFilledSeconds bounds the throughput series: a bogus receive stamp far
// from the others must not make billions of empty seconds.
const maxFilledSeconds = 1 << 20

// throughputSeries turns deliveries per second of receive time into the
// plotted series: x is seconds since the first second with a delivery, y the
// deliveries in that second, with every second up to the last one present
// (zero when nothing arrived, so an outage shows as a drop to zero).
func throughputSeries(perSecond map[int64]int64) []point {
	if len(perSecond) == 0 {
		return nil
	}
	secs := make([]int64, 0, len(perSecond))
	for sec := range perSecond {
		secs = append(secs, sec)
	}
	slices.Sort(secs)
	first, last := secs[0], secs[len(secs)-1]
	if last-first >= maxFilledSeconds {
		pts := make([]point, len(secs))
		for i, sec := range secs {
			pts[i] = point{float64(sec - first), float64(perSecond[sec])}
		}
		return pts
	}
	pts := make([]point, 0, last-first+1)
	for sec := first; sec <= last; sec++ {
		pts = append(pts, point{float64(sec - first), float64(perSecond[sec])})
	}
	return pts
}
