package cluster

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkEngineClosedLoops is the replicated engine's own ceiling for
// bench-compare's pairs-10 shape, with no MQTT, sequencer or room log:
// ten publishers on the three in-process nodes' JetStream, each
// publishing its next 256-byte record to its own subject of a stream
// replicated three times (file storage, as the room log) once the
// previous one is acknowledged. With views=true each node also follows
// the stream with a consumer on its own replica, as each broker's view
// does. b.N records in all; it reports msg/s and the process's CPU
// (user+system, all three nodes) per record. A cluster of chat brokers
// does more per message than this (the views' files, routing, the MQTT
// clients), so its pairs-10 rate stays below the views=true figure:
//
//	go test -run '^$' -bench EngineClosedLoops -benchtime 20000x ./broker/cluster/
func BenchmarkEngineClosedLoops(b *testing.B) {
	for _, views := range []bool{false, true} {
		b.Run(fmt.Sprint("views=", views), func(b *testing.B) { engineClosedLoops(b, views) })
	}
}

func engineClosedLoops(b *testing.B, views bool) {
	const loops = 10
	stores := startLogs(b, 3)
	ctx := context.Background()
	if _, err := stores[0].js.CreateStream(ctx, jetstream.StreamConfig{Name: "ENGINE", Subjects: []string{"engine.>"},
		Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
		b.Fatal(err)
	}
	if views {
		for _, s := range stores {
			followEngine(b, s)
		}
	}
	payload := make([]byte, 256)
	per := (b.N + loops - 1) / loops
	b.ResetTimer()
	began, cpu := time.Now(), processCPU()
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
	n := float64(per * loops)
	b.ReportMetric(n/time.Since(began).Seconds(), "msg/s")
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/n, "cpu-µs/msg")
}

// followEngine consumes ENGINE for the rest of b with a consumer placed as
// a view's (localConsumer: on s's own replica), taking each record and no
// more.
func followEngine(b *testing.B, s *LogStore) {
	ctx := context.Background()
	stream, err := s.js.Stream(ctx, "ENGINE")
	if err != nil {
		b.Fatal(err)
	}
	cons, err := s.localConsumer(ctx, &partition{name: "ENGINE", stream: stream}, 1)
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(jetstream.Msg) {}, jetstream.PullExpiry(followPullExpiry), jetstream.PullHeartbeat(followHeartbeat))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
}

// processCPU is this process's user+system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
