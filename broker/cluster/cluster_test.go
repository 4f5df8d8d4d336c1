package cluster_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/config"
)

// TestLiveAcrossBrokers: a message published on one broker reaches members
// on the other two live, in room order, with contiguous room_seq, and each
// broker serves the same history.
func TestLiveAcrossBrokers(t *testing.T) {
	bs := brokertest.StartCluster(t, 3)
	bob, carol := join(t, bs[1].URL, "bob"), join(t, bs[2].URL, "carol")
	bob.follow("lobby")
	carol.follow("lobby")
	alice := join(t, bs[0].URL, "alice")
	const n = 40
	for i := range n {
		if !alice.say("lobby", fmt.Sprintf("m%d", i), wait) {
			t.Fatalf("message %d not acknowledged", i)
		}
	}
	for _, m := range []*member{bob, carol} {
		got := m.waitFor(n)
		contiguous(t, m.user+" live", got)
	}
	ref := alice.historyOf("lobby", n)
	contiguous(t, "history on b1", ref)
	for i, m := range []*member{bob, carol} {
		sameOrder(t, fmt.Sprintf("history on b%d", i+2), ref, m.historyOf("lobby", len(ref)))
	}
	// Every record crossed b2's routes at least once: it replicates or leads each partition.
	if c := bs[1].Stats(t).Cluster; c == nil || c.Node != "b2" || c.Routes < 2 || c.LogApplied < n || c.RouteMsgsIn < int64(n) || c.RouteMsgsOut == 0 {
		t.Fatalf("/stats cluster on b2: %+v, want node b2, routes to both others, the log applied to %d or more, as many route messages in", c, n)
	}
}

// TestConcurrentPublishersOneOrder: publishers on the three brokers write
// to one room at once; the room gets one contiguous order, the same on
// every broker, live and in history.
func TestConcurrentPublishersOneOrder(t *testing.T) {
	bs := brokertest.StartCluster(t, 3)
	users := []string{"alice", "bob", "carol"}
	watchers := make([]*member, len(bs))
	for i, b := range bs {
		watchers[i] = join(t, b.URL, "watch"+users[i])
		watchers[i].follow("dev")
	}
	const each = 30
	var wg sync.WaitGroup
	for i, b := range bs {
		p := join(t, b.URL, users[i])
		wg.Go(func() {
			for k := range each {
				if !p.say("dev", fmt.Sprintf("%s-%d", p.user, k), wait) {
					t.Errorf("%s: message %d not acknowledged", p.user, k)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ref := watchers[0].historyOf("dev", 3*each)
	if len(ref) != 3*each {
		t.Fatalf("history holds %d messages, want %d", len(ref), 3*each)
	}
	contiguous(t, "history on b1", ref)
	bySeq := map[uint64]string{}
	for _, e := range ref {
		bySeq[e.RoomSeq] = e.From + "/" + e.ID
	}
	for i, w := range watchers {
		sameOrder(t, fmt.Sprintf("history on b%d", i+1), ref, w.historyOf("dev", len(ref)))
		for _, e := range w.waitFor(3 * each) {
			if bySeq[e.RoomSeq] != e.From+"/"+e.ID {
				t.Fatalf("b%d live: #%d is %s/%s, history says %s", i+1, e.RoomSeq, e.From, e.ID, bySeq[e.RoomSeq])
			}
		}
	}
}

// TestKillOneBrokerUnderLoad: publishers on two brokers; the broker of one
// of them dies mid-load and that publisher moves to another broker and
// resends what was unacknowledged. Every acknowledged message is in the
// log once, room_seq stays contiguous, and the dead broker, restarted,
// catches up and serves the same log.
func TestKillOneBrokerUnderLoad(t *testing.T) {
	bs := brokertest.StartCluster(t, 3)
	const n = 40
	killAt := make(chan struct{})
	var wg sync.WaitGroup
	var aliceAcked, carolAcked []string
	var aliceAt []time.Time // when each of alice's messages was acknowledged
	wg.Go(func() {
		aliceAcked = sendAll(t, []string{bs[0].URL}, "alice", "ops", n, func(int) { aliceAt = append(aliceAt, time.Now()) })
	})
	wg.Go(func() {
		carolAcked = sendAll(t, []string{bs[2].URL, bs[0].URL}, "carol", "ops", n, func(k int) {
			if k == n/3 {
				close(killAt)
			}
		})
	})
	<-killAt
	killed := time.Now()
	bs[2].Kill()
	wg.Wait()
	for _, at := range aliceAt {
		if at.After(killed) {
			t.Logf("first acknowledgement on a surviving broker %s after the kill", at.Sub(killed).Round(time.Millisecond))
			break
		}
	}
	reader := join(t, bs[1].URL, "reader")
	got := reader.historyOf("ops", 2*n)
	contiguous(t, "history on b2", got)
	stored := map[string]bool{}
	for _, e := range got {
		stored[e.ID] = true
	}
	for _, id := range append(aliceAcked, carolAcked...) {
		if !stored[id] {
			t.Fatalf("acknowledged %s is not in the log", id)
		}
	}
	if len(got) != 2*n {
		t.Fatalf("log holds %d messages, want %d (each sent message once)", len(got), 2*n)
	}
	back := brokertest.Start(t, bs[2].Config)
	sameOrder(t, "history on the restarted b3", got, join(t, back.URL, "reader3").historyOf("ops", len(got)))
}

// TestMinorityRefusesWrites: a broker cut off from the other two keeps
// serving what it has but acknowledges no write; once the others are back
// it acknowledges again, and the log holds every acknowledged message.
func TestMinorityRefusesWrites(t *testing.T) {
	bs := cutOff(t, "cut-off", 8*time.Second)
	if h := join(t, bs[2].URL, "dave").history("lab"); len(h) != 1 || h[0].ID != "before" {
		t.Fatalf("the cut-off broker serves %d messages, want the 1 acknowledged", len(h))
	}
	healed := brokertest.StartAll(t, []config.Broker{bs[0].Config, bs[1].Config})
	sendAll(t, []string{bs[2].URL}, "dave", "lab", 1, nil)
	// "cut-off" was never acknowledged while cut off, but dave's client
	// resends it until a broker takes it: after healing it may be stored
	// too (once, after "before"), which contiguous checks.
	h := join(t, healed[0].URL, "erin").historyHolding("lab", "before", "dave-0")
	contiguous(t, "history after healing", h)
	ids := map[string]bool{}
	for _, e := range h {
		ids[e.ID] = true
	}
	if !ids["before"] || !ids["dave-0"] {
		t.Fatalf("history after healing lacks an acknowledged message: %v", ids)
	}
}

// TestDMIndexLearnsOtherBrokers: a DM sent on one broker to a user who has
// never connected is listed for them by another broker, and served there.
func TestDMIndexLearnsOtherBrokers(t *testing.T) {
	bs := brokertest.StartCluster(t, 3)
	join(t, bs[0].URL, "alice").dm("bob", "hello-bob")
	bob := join(t, bs[1].URL, "bob")
	deadline := time.Now().Add(wait)
	for {
		convs := bob.list()
		if len(convs) == 1 && convs[0].Conv == "@alice,bob" && convs[0].LastSeq == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's conversations on b2: %+v, want @alice,bob at 1", convs)
		}
	}
	if h := bob.history("@alice,bob"); len(h) != 1 || h[0].ID != "hello-bob" {
		t.Fatalf("bob's DM history on b2: %+v", h)
	}
}

// TestLastBrokerStopsPromptly: the last broker of a cluster, with a publish
// waiting for a majority that is gone, stops at once instead of holding its
// shutdown for the append's timeout.
func TestLastBrokerStopsPromptly(t *testing.T) {
	bs := cutOff(t, "waiting", time.Second)
	began := time.Now()
	bs[2].Close()
	// The append's timeout is 5 s; the shutdown must not wait for it.
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("the last broker took %s to stop", took)
	}
}

// cutOff starts three brokers, has dave on the third say "before" in lab,
// kills the other two, and checks that his next message, id, is not
// acknowledged within timeout: the third broker has no majority.
func cutOff(t *testing.T, id string, timeout time.Duration) []*brokertest.Broker {
	t.Helper()
	bs := brokertest.StartCluster(t, 3)
	dave := join(t, bs[2].URL, "dave")
	if !dave.say("lab", "before", wait) {
		t.Fatal("first message not acknowledged")
	}
	bs[0].Kill()
	bs[1].Kill()
	if dave.say("lab", id, timeout) {
		t.Fatal("a broker without a majority acknowledged a write")
	}
	return bs
}
