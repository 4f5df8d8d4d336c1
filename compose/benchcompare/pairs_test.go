package benchcompare

import (
	"context"
	"testing"
	"time"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

func TestPairPayloadSize(t *testing.T) {
	for _, size := range []int{200, 256, 1024} {
		b, err := pairPayload("p3", "pair3", 42, time.Unix(1, 0), size)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != size {
			t.Errorf("payload for size %d is %d bytes", size, len(b))
		}
		env, err := wire.DecodeEnvelope(b, 0)
		if err != nil || env.Seq != 42 || env.From != "p3" || env.Room != "pair3" {
			t.Errorf("payload decodes to %+v, %v", env, err)
		}
	}
}

// TestRunPairsAgainstBroker runs a short pair load through a real distchat
// broker (room log on, on disk) and checks that messages flowed, none was
// lost and the latencies are plausible.
func TestRunPairsAgainstBroker(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := PairsConfig{URL: b.URL, Pairs: 3, Size: 256, Warmup: 50 * time.Millisecond,
		Duration: 300 * time.Millisecond, Timeout: 5 * time.Second}
	r, err := RunPairs(ctx, cfg)
	if err != nil {
		t.Fatalf("RunPairs: %v", err)
	}
	if r.Received < int64(cfg.Pairs) || r.Published != r.Received {
		t.Errorf("published %d, received %d: want every message received, at least one per pair", r.Published, r.Received)
	}
	if int64(len(r.Latencies)) != r.Received || r.Deliveries < r.Received {
		t.Errorf("%d latencies, %d received, %d deliveries", len(r.Latencies), r.Received, r.Deliveries)
	}
	for _, l := range r.Latencies {
		if l <= 0 || l > cfg.Timeout {
			t.Fatalf("latency %v outside (0, %v]", l, cfg.Timeout)
		}
	}
	if r.Elapsed <= 0 || r.Elapsed > cfg.Duration {
		t.Errorf("measured window %v, want within (0, %v]", r.Elapsed, cfg.Duration)
	}
	st := waitNoClients(t, b)
	if st.RoomLog == nil {
		t.Fatal("the test broker has no room log")
	}
	// The pair topics are room topics: the room log stores every message.
	if st.RoomLog.Appended < r.Deliveries || st.RoomLog.Invalid != 0 {
		t.Errorf("room log appended %d (invalid %d) for %d deliveries", st.RoomLog.Appended, st.RoomLog.Invalid, r.Deliveries)
	}
}

func TestRunPairsRejectsEmptyShape(t *testing.T) {
	if _, err := RunPairs(t.Context(), PairsConfig{URL: "tcp://127.0.0.1:1", Pairs: 0, Duration: time.Second, Timeout: time.Second}); err == nil {
		t.Error("RunPairs with no pairs: no error")
	}
}

// waitNoClients waits until the broker has finished disconnecting every
// client and returns its stats. Closing a Mochi v2.7.9 server while it still
// removes a disconnecting client can deadlock (recursive RLock in
// Clients.GetByListener, mochi-mqtt/server#488), so the test's cleanup must
// not race the pairs' disconnects.
func waitNoClients(t *testing.T, b *brokertest.Broker) broker.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		st := b.Server.Stats()
		if st.ClientsConnected == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients still connected 10s after the load", st.ClientsConnected)
		}
		<-tick.C
	}
}
