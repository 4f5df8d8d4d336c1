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
	reportLatency(b, lat)
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
	b.ResetTimer()
	lat, _ := closedLoops(b, pubs)
	b.StopTimer()
	reportLatency(b, lat)
}

// closedLoops has each publisher send to the room "bench", its next
// message once the previous one is acknowledged, b.N messages in all, and
// returns every message's publish → PUBACK time and how long it all took.
func closedLoops(b *testing.B, pubs []*member) ([]time.Duration, time.Duration) {
	lats := make([][]time.Duration, len(pubs))
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range pubs {
		n := b.N / len(pubs)
		if i < b.N%len(pubs) {
			n++
		}
		wg.Go(func() {
			for k := range n {
				sent := time.Now()
				if !p.say("bench", fmt.Sprintf("%s-%d", p.user, k), wait) {
					b.Errorf("%s: message %d not acknowledged", p.user, k)
					return
				}
				lats[i] = append(lats[i], time.Since(sent))
			}
		})
	}
	wg.Wait()
	return slices.Concat(lats...), time.Since(start)
}

// reportLatency reports the p50 and p99 of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSharedRoomAppends measures publish → PUBACK when twelve
// publishers on one broker of a three-broker cluster send to one room,
// each its next message once the previous one is acknowledged: a busy
// room on one broker. b.N messages in all; it reports p50, p99 and
// messages per second.
//
//	go test -run '^$' -bench SharedRoomAppends -benchtime 2400x ./broker/cluster/
func BenchmarkSharedRoomAppends(b *testing.B) {
	const publishers = 12
	bs := brokertest.StartCluster(b, 3)
	pubs := make([]*member, publishers)
	for i := range pubs {
		pubs[i] = join(b, bs[0].URL, fmt.Sprintf("user%d", i))
	}
	b.ResetTimer()
	lat, elapsed := closedLoops(b, pubs)
	b.StopTimer()
	reportLatency(b, lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "msg/s")
}
