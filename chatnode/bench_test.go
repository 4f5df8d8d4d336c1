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
