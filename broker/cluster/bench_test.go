package cluster_test

import (
	"fmt"
	"slices"
	"sync"
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

// BenchmarkContendedAppends measures publish → PUBACK when three
// publishers, one on each broker of a three-broker cluster, take turns
// in no order on one room: the appends race for the room's next
// room_seq, and the losers learn the winner's record and try again.
// Each publisher sends its next message when the previous one is
// acknowledged; b.N messages in all. It reports p50 and p99.
//
//	go test -run '^$' -bench ContendedAppends -benchtime 600x ./broker/cluster/
func BenchmarkContendedAppends(b *testing.B) {
	bs := brokertest.StartCluster(b, 3)
	users := []string{"alice", "bob", "carol"}
	pubs := make([]*member, len(bs))
	for i, br := range bs {
		pubs[i] = join(b, br.URL, users[i])
	}
	lats := make([][]time.Duration, len(pubs))
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, p := range pubs {
		n := b.N / len(pubs)
		if i < b.N%len(pubs) {
			n++
		}
		wg.Go(func() {
			for k := range n {
				start := time.Now()
				if !p.say("bench", fmt.Sprintf("%s-%d", p.user, k), wait) {
					b.Errorf("%s: message %d not acknowledged", p.user, k)
					return
				}
				lats[i] = append(lats[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	lat := slices.Concat(lats...)
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
