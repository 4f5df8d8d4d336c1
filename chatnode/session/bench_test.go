package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/session/statedir"
	"github.com/distchat/distchat/config"
)

// BenchmarkPublishQoS1 measures one node's QoS 1 publish rate (200-byte
// envelopes, default window of 64) until every PUBACK is in, with one
// subscriber in the room, against the real broker (room log on) in each
// durability mode.
func BenchmarkPublishQoS1(b *testing.B) {
	for _, d := range []config.Durability{config.DurabilityProcess, config.DurabilityMachine} {
		b.Run(fmt.Sprintf("durability=%s", d), func(b *testing.B) { benchPublish(b, d) })
	}
}

func benchPublish(b *testing.B, durability config.Durability) {
	bc := brokertest.Config(b)
	bc.Durability = durability
	br := brokertest.Start(b, bc)
	cfg := nodeConfigTB(b, br.URL, "tx", "bench")
	rxCfg := nodeConfigTB(b, br.URL, "rx", "bench")
	tx := startNode(b, cfg)
	startNode(b, rxCfg)
	ctx := context.Background()
	b.SetBytes(200)
	b.ResetTimer()
	var last *Sent
	for i := 0; i < b.N; i++ {
		s, err := tx.Send(ctx, Outgoing{Room: "bench", Body: "bench", Size: 200})
		if err != nil {
			b.Fatal(err)
		}
		last = s
	}
	<-last.Done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkCatchUp100k: a node that was away while 100,000 messages (200 B)
// were sent to its room comes back and catches up from the room log (pages
// of 500, over MQTT); the time is from its start to the last message shown.
// It comes back under a new client id, so Mochi's session queue plays no
// part: this is the room log's catch-up alone. Run with -benchtime 1x.
func BenchmarkCatchUp100k(b *testing.B) {
	const n = 100_000
	cfg := brokertest.Config(b)
	br := brokertest.Start(b, cfg)
	tx := startNode(b, nodeConfigTB(b, br.URL, "tx", "big"))
	rxCfg := nodeConfigTB(b, br.URL, "rx", "big")
	rxCfg.StateDir = b.TempDir()
	ctx := context.Background()
	var last *Sent
	for i := 0; i < n; i++ {
		s, err := tx.Send(ctx, Outgoing{Room: "big", Body: "m", Size: 200})
		if err != nil {
			b.Fatal(err)
		}
		last = s
	}
	<-last.Done
	if last.Err != nil {
		b.Fatal(last.Err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The node last saw room sequence 1: it catches up on the rest.
		if err := statedir.Save(rxCfg.StateDir, "rx", statedir.State{Convs: map[string]uint64{"big": 1}}); err != nil {
			b.Fatal(err)
		}
		c := rxCfg
		c.ClientID = fmt.Sprintf("rx-%d", i)
		start := time.Now()
		rx := startNode(b, c)
		rx.got.waitFor(b, 5*time.Minute, "the catch-up", func(c *collector) bool { return len(c.msgs) >= n-1 })
		b.ReportMetric(time.Since(start).Seconds(), "s/catch-up")
		b.ReportMetric(float64(n-1)/time.Since(start).Seconds(), "msg/s")
		b.StopTimer()
		rx.close(b)
		b.StartTimer()
	}
}
