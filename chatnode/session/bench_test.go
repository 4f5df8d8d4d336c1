package session

import (
	"context"
	"testing"

	"github.com/distchat/distchat/broker/brokertest"
)

// BenchmarkPublishQoS1 measures one node's QoS 1 publish rate (200-byte
// envelopes, default window of 64) until every PUBACK is in, with one
// subscriber in the room.
func BenchmarkPublishQoS1(b *testing.B) {
	br := brokertest.Start(b, brokertest.Config(b))
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
