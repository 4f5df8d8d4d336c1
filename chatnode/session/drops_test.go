package session

import (
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// TestNodeRepairsInflightDrops is Mochi's silent drop at the in-flight quota end to end: with
// a tiny in-flight quota Mochi drops messages for a receiver after PUBACKing
// the publisher, telling no hook. The sender, busy with its own window of
// publishes, is the receiver that falls behind here (its own messages come
// back to it). Every node sees the room sequence gaps and repairs every one
// from the room log.
func TestNodeRepairsInflightDrops(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Limits.MaxInflight = 4
	b := brokertest.Start(t, cfg)
	tx := startNode(t, nodeConfig(t, b.URL, "tx", "r1"))
	rx := startNode(t, nodeConfig(t, b.URL, "rx", "r1"))
	// No waiting for presence: at this quota the retained presence messages
	// may be dropped too. Both nodes are subscribed once started.
	const n = 500
	send(t, tx, "r1", n)
	var synced int
	for _, node := range []*testNode{tx, rx} {
		node.got.waitFor(t, 30*time.Second, node.cfg.Nick+" to get every message", func(c *collector) bool { return len(c.msgs) >= n })
		checkComplete(t, node, map[[2]string]int{{"tx", "r1"}: n})
		for _, m := range node.got.messages() {
			if m.Via == nodelog.ViaSync {
				synced++
			}
		}
	}
	drops := b.Server.Stats().Drops["inflight_quota"]
	if drops == 0 {
		t.Fatal("no in-flight drops counted: the test did not exercise the quota")
	}
	if synced == 0 {
		t.Errorf("%d drops, yet nothing came from the room log", drops)
	}
	t.Logf("%d messages dropped by the broker; the nodes repaired %d from the room log", drops, synced)
}
