package session

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestClusterFailoverUnderLoad: three brokers of one cluster, and alice,
// bob and carol each listing all three from a home broker of their own.
// Under load bob's broker is killed (closed without flushing); bob moves to
// the next broker of his list. Afterwards every member has every message
// exactly once, all in the same room order.
func TestClusterFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("three clustered brokers and a kill under load")
	}
	bs := brokertest.StartCluster(t, 3)
	list := func(home int) string {
		return bs[home%3].URL + "," + bs[(home+1)%3].URL + "," + bs[(home+2)%3].URL
	}
	nicks := []string{"alice", "bob", "carol"}
	nodes := make([]*testNode, len(nicks))
	for i, nick := range nicks {
		cfg := nodeConfig(t, list(i), nick, "lobby")
		cfg.GapWait = 15 * time.Second // room order holds across the move
		// The kill is what moves bob. A cluster re-electing the leaders the
		// killed broker held acknowledges late on a busy machine; that is
		// no stall to move away from (TestFailoverFromStalledBroker is).
		cfg.StallFailover = time.Minute
		nodes[i] = startNode(t, cfg)
		if got := nodes[i].broker(); got != bs[i].URL {
			t.Fatalf("%s connected to %s, want its home broker %s", nick, got, bs[i].URL)
		}
	}
	const count = 300
	var wg sync.WaitGroup
	errc := make(chan error, len(nodes))
	for _, n := range nodes {
		wg.Go(func() { errc <- sendPaced(n, count, 2*time.Millisecond) })
	}
	nodes[0].got.waitFor(t, 30*time.Second, "a third of the load", func(c *collector) bool { return len(c.msgs) >= count })
	bs[1].Kill()
	waitStatuses(t, nodes[1], "up "+bs[1].URL, "lost "+bs[1].URL, "up "+bs[2].URL)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[[2]string]int{}
	for _, nick := range nicks {
		want[[2]string{nick, "lobby"}] = count
	}
	var order []string
	for i, n := range nodes {
		n.got.waitFor(t, 60*time.Second, n.cfg.Nick+" to get all", func(c *collector) bool { return len(c.msgs) >= total(want) })
		checkComplete(t, n, want)
		var ids []string
		var last uint64
		for _, m := range n.got.messages() {
			if m.Env.RoomSeq <= last {
				t.Fatalf("%s: room_seq %d after %d", n.cfg.Nick, m.Env.RoomSeq, last)
			}
			last = m.Env.RoomSeq
			ids = append(ids, fmt.Sprintf("%d=%s", m.Env.RoomSeq, m.Env.ID))
		}
		if i == 0 {
			order = ids
			continue
		}
		if fmt.Sprint(ids) != fmt.Sprint(order) {
			t.Errorf("%s's room order differs from alice's", n.cfg.Nick)
		}
	}
}

// sendPaced sends count room messages from n, one per interval, and waits
// for every acknowledgement.
func sendPaced(n *testNode, count int, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var all []*Sent
	for range count {
		<-tick.C
		s, err := n.Send(context.Background(), Outgoing{Room: "lobby", Body: "x", Size: 200})
		if err != nil {
			return fmt.Errorf("%s: send: %w", n.cfg.Nick, err)
		}
		all = append(all, s)
	}
	for _, s := range all {
		select {
		case <-s.Done:
			if s.Err != nil {
				return fmt.Errorf("%s: %s: %w", n.cfg.Nick, s.ID, s.Err)
			}
		case <-time.After(60 * time.Second):
			return fmt.Errorf("%s: %s: no acknowledgement within 60 s", n.cfg.Nick, s.ID)
		}
	}
	return nil
}
