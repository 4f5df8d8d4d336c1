package cluster_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// BenchmarkPublishAck measures one chat message's publish → PUBACK on a
// broker of a three-broker cluster (replicated append, quorum of 2 of 3
// on loopback), one publisher at a time, and reports p50 and p99.
//
//	go test -run '^$' -bench PublishAck -benchtime 500x ./broker/cluster/
func BenchmarkPublishAck(b *testing.B) {
	bs := brokertest.StartCluster(b, 3)
	alice := join(b, bs[0].URL, "alice")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if !alice.say("bench", fmt.Sprintf("b%d", i), wait) {
			b.Fatalf("message %d not acknowledged", i)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
