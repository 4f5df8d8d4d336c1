package cluster_test

import (
	"fmt"
	"testing"

	"github.com/distchat/distchat/broker/brokertest"
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
	ref := alice.history("lobby")
	contiguous(t, "history on b1", ref)
	for i, m := range []*member{bob, carol} {
		sameOrder(t, fmt.Sprintf("history on b%d", i+2), ref, m.history("lobby"))
	}
}
