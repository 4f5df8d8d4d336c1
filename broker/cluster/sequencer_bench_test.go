package cluster

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkOneRoomThreeBrokers appends to one conversation from three
// brokers at once, eight appenders on each, each appending its next record
// once the previous one is acknowledged, b.N records in all: a busy room
// whose members are spread over the brokers. With sequencer=leader the
// brokers that do not lead the room's partition forward to the one that
// does; with sequencer=each every broker batches and appends its own
// records, racing the others for the room's next number (wrong-last/op
// counts the batches the stream refused). It reports p50 and p99 of an
// append and records per second.
//
//	go test -run '^$' -bench OneRoomThreeBrokers -benchtime 3000x ./broker/cluster/
func BenchmarkOneRoomThreeBrokers(b *testing.B) {
	for _, mode := range []string{"leader", "each"} {
		b.Run("sequencer="+mode, func(b *testing.B) {
			stores := startLogs(b, 3)
			for _, s := range stores {
				if mode == "leader" {
					s.restamp = func(data []byte, seq uint64) ([]byte, error) { return data, nil }
				} else {
					s.restamp = nil
				}
			}
			const per = 8
			lats := make([][]time.Duration, 3*per)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for i := range 3 * per {
				s := stores[i%3]
				n := b.N / (3 * per)
				wg.Go(func() {
					for k := range n {
						data := fmt.Appendf(nil, `{"id":"%d-%d","from":"t"}`, i, k)
						began := time.Now()
						if _, err := s.Append("bench", time.Now().UnixNano(), func(uint64) ([]byte, error) { return data, nil }); err != nil {
							b.Errorf("append: %v", err)
							return
						}
						lats[i] = append(lats[i], time.Since(began))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lats...)
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			var wrong int64
			for _, s := range stores {
				wrong += s.counts.WrongLast.Load()
			}
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "rec/s")
			b.ReportMetric(float64(wrong)/float64(len(all)), "wrong-last/op")
		})
	}
}
