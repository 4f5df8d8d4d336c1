package chatnode

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/session"
	"github.com/distchat/distchat/config"
)

func benchConfig(tb testing.TB, url, nick string) config.Node {
	cfg := config.DefaultNode()
	cfg.Broker, cfg.Nick, cfg.Rooms, cfg.History = config.Brokers{url}, nick, []string{"load"}, 0
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// runThree runs three bench nodes in one room, each at rate/3 msg/s, and
// returns their results.
func runThree(tb testing.TB, url string, perNode int, rate float64) []benchResult {
	var wg sync.WaitGroup
	res := make([]benchResult, 3)
	errs := make([]error, 3)
	for i, nick := range []string{"alice", "bob", "carol"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := logrus.New()
			l.SetOutput(io.Discard)
			bp := benchParams{count: perNode, size: 200, rate: rate / 3, peers: 3, linger: 20 * time.Second, startTimeout: 20 * time.Second}
			res[i], errs[i] = bench(context.Background(), benchConfig(tb, url, nick), bp, l.WithField("node", nick), nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
	}
	return res
}

// TestBenchThreeNodes is a small end-to-end load run: every node gets every
// message exactly once. On a loaded machine a copy can arrive both live and
// through a catch-up reply (a room that looks quiet asks for its tail); the
// node suppresses it and counts it, so duplicates are reported, not failed.
func TestBenchThreeNodes(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	for _, r := range runThree(t, b.URL, 300, 1500) {
		if r.Sent != 300 || r.Received != 900 {
			t.Errorf("result %s, want sent=300 received=900", r)
		}
		if r.Duplicates > 0 {
			t.Logf("%d duplicate copies suppressed (%s)", r.Duplicates, r)
		}
	}
}

// BenchmarkEndToEnd3Nodes: three bench nodes in one room, 1,000 msg/s in all
// (open loop, 200 B, 5 s), against the real broker with a data directory: the
// room log in each durability mode, and switched off, so the room log's own
// cost shows. Reports the worst node's p50/p99 end-to-end latency. Run with
// -benchtime 1x.
func BenchmarkEndToEnd3Nodes(b *testing.B) {
	for _, tt := range []struct {
		durability config.Durability
		roomLog    bool
	}{{config.DurabilityProcess, true}, {config.DurabilityMachine, true}, {config.DurabilityProcess, false}} {
		name := fmt.Sprintf("durability=%s/room_log=%t", tt.durability, tt.roomLog)
		b.Run(name, func(b *testing.B) {
			cfg := brokertest.Config(b)
			cfg.Durability = tt.durability
			cfg.RoomLog.Enabled = tt.roomLog
			benchEndToEnd(b, brokertest.Start(b, cfg))
		})
	}
}

func benchEndToEnd(b *testing.B, br *brokertest.Broker) {
	for i := 0; i < b.N; i++ {
		res := runThree(b, br.URL, 1667, 1000)
		var p50, p99 time.Duration
		for _, r := range res {
			p50, p99 = max(p50, r.P50), max(p99, r.P99)
			if r.Received != 3*1667 {
				b.Errorf("lost messages: %s", r)
			}
		}
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	}
}

// TestBenchPerNode: the expected count of a run given by -duration matches
// what sendLoad sends (one every 1/rate from time zero, within the duration).
func TestBenchPerNode(t *testing.T) {
	for _, tt := range []struct {
		bp   benchParams
		want int
	}{
		{benchParams{count: 7, rate: 100, duration: time.Second}, 7},
		{benchParams{rate: 50, duration: 6 * time.Second}, 300},
		{benchParams{rate: 3, duration: 1100 * time.Millisecond}, 4},
		{benchParams{rate: 0, duration: time.Second}, 0},
	} {
		if got := tt.bp.perNode(); got != tt.want {
			t.Errorf("%+v: perNode %d, want %d", tt.bp, got, tt.want)
		}
	}
}

// TestWaitAckedIsBounded: a publish whose PUBACK never comes (in flight
// when its broker died) holds the bench at most until the linger ends, and
// is counted, not waited for.
func TestWaitAckedIsBounded(t *testing.T) {
	done := func() *session.Sent {
		m := &session.Sent{Done: make(chan struct{})}
		close(m.Done)
		return m
	}
	pending := func() *session.Sent { return &session.Sent{Done: make(chan struct{})} }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		sent    []*session.Sent
		linger  time.Duration
		unacked int
	}{
		{"all acknowledged", context.Background(), []*session.Sent{done(), done()}, time.Hour, 0},
		{"nothing sent", context.Background(), nil, time.Hour, 0},
		{"one never acknowledged", context.Background(), []*session.Sent{done(), pending(), done()}, 20 * time.Millisecond, 1},
		{"linger already over", context.Background(), []*session.Sent{pending(), pending()}, 0, 2},
		{"stopped", cancelled, []*session.Sent{done(), pending()}, time.Hour, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			if got := waitAcked(tt.ctx, tt.sent, start.Add(tt.linger)); got != tt.unacked {
				t.Errorf("waitAcked = %d unacknowledged, want %d", got, tt.unacked)
			}
			if took := time.Since(start); took > tt.linger+5*time.Second {
				t.Errorf("waitAcked took %s with a linger of %s", took, tt.linger)
			}
		})
	}
}

// TestBenchResultString: the summary line names unacknowledged messages
// only when there are some, so its usual form stays what parsers read.
func TestBenchResultString(t *testing.T) {
	r := benchResult{Sent: 3, Received: 3, Expected: 3}
	want := "sent=3 received=3 expected=3 duplicates=0 p50=0.000ms p99=0.000ms max=0.000ms"
	if got := r.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	r.Unacked = 1
	if got := r.String(); got != want+" unacked=1" {
		t.Errorf("String() with one unacknowledged = %q", got)
	}
}
