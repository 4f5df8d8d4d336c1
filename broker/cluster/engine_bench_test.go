package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkEngineClosedLoops is the replicated engine's own ceiling for
// bench-compare's pairs-10 shape, with no MQTT, view or sequencer: ten
// publishers on the three in-process nodes' JetStream, each publishing its
// next 256-byte record to its own subject of a stream replicated three
// times (file storage, as the room log) once the previous one is
// acknowledged. b.N records in all; it reports msg/s. A cluster of chat
// brokers does more per message than this (the views, routing, the MQTT
// clients), so its pairs-10 rate stays below it:
//
//	go test -run '^$' -bench EngineClosedLoops -benchtime 20000x ./broker/cluster/
func BenchmarkEngineClosedLoops(b *testing.B) {
	const loops = 10
	stores := startLogs(b, 3)
	ctx := context.Background()
	if _, err := stores[0].js.CreateStream(ctx, jetstream.StreamConfig{Name: "ENGINE", Subjects: []string{"engine.>"},
		Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	per := (b.N + loops - 1) / loops
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	for i := range loops {
		js := stores[i%len(stores)].js
		wg.Go(func() {
			subject := fmt.Sprintf("engine.%d", i)
			for range per {
				if _, err := js.Publish(ctx, subject, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(per*loops)/time.Since(began).Seconds(), "msg/s")
}
