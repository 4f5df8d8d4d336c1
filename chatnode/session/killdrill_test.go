package session

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/config"
)

// The kill drill: three nodes chat in three rooms and by DM while the broker
// (the real binary, a child process) is killed with SIGKILL at random moments
// and restarted on the same port and data directory, in each durability mode.
// A fourth user, dave, is sent DMs throughout and connects for the first time
// after the last kill. Afterwards every acknowledged room message is shown
// exactly once to every member, in room order, and every acknowledged DM
// exactly once to its recipient, dave included.
//
// DISTCHAT_DRILL_KILLS sets the kills per mode (default 10).
func TestBrokerKillDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the broker binary and kills it repeatedly")
	}
	kills := envCount(t, "DISTCHAT_DRILL_KILLS", 10)
	bin := brokertest.Build(t)
	for _, d := range []config.Durability{config.DurabilityProcess, config.DurabilityMachine} {
		t.Run("durability="+d.String(), func(t *testing.T) { killDrill(t, bin, d, kills) })
	}
}

// envCount is the positive number in the environment variable name, or def
// when it is not set.
func envCount(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// drillRooms are the rooms every drill node is in.
var drillRooms = []string{"r1", "r2", "r3"}

func killDrill(t *testing.T, bin string, durability config.Durability, kills int) {
	br := startBrokerProcess(t, bin, durability)
	nodes := map[string]*testNode{}
	for _, nick := range []string{"alice", "bob", "carol"} {
		nodes[nick] = startNode(t, drillNodeConfig(t, "tcp://"+br.Addr, nick, drillRooms...))
	}
	for _, r := range drillRooms {
		waitOnline(t, r, nodes["alice"], nodes["bob"], nodes["carol"])
	}
	ctx, stop := context.WithCancel(context.Background())
	var sent sync.WaitGroup
	var mu sync.Mutex
	var all []drillSent
	for nick, n := range nodes {
		sent.Add(1)
		go func() {
			defer sent.Done()
			out := drillLoad(ctx, t, nick, n)
			mu.Lock()
			all = append(all, out...)
			mu.Unlock()
		}()
	}
	for range kills {
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond) // a random moment, not a wait for an event
		br.Kill(t)
		br.Start(t)
	}
	stop()
	sent.Wait()

	nodes["dave"] = startNode(t, drillNodeConfig(t, "tcp://"+br.Addr, "dave"))
	want := expectedDeliveries(all)
	acked := 0
	for _, s := range all {
		if s.acked {
			acked++
		}
	}
	for nick, n := range nodes {
		n.got.waitFor(t, 60*time.Second, nick+" to show every acknowledged message", func(c *collector) bool {
			return shownAll(c.msgs, want[nick])
		})
		checkDrill(t, nick, n.got.messages(), want[nick])
		t.Logf("%s: %d kills, %d messages sent, %d acknowledged, %d shown to %s (%d expected)",
			durability, kills, len(all), acked, len(n.got.messages()), nick, len(want[nick]))
	}
}

// drillNodeConfig is a node with a state directory and a gap_wait long
// enough for a loaded machine under the race detector to answer a repair
// within it: the drill checks order across kills, and a gap given up after
// gap_wait is shown around by design.
func drillNodeConfig(t *testing.T, url, nick string, rooms ...string) config.Node {
	cfg := nodeConfig(t, url, nick, rooms...)
	cfg.StateDir = t.TempDir()
	cfg.GapWait = 5 * time.Second
	return cfg
}

// drillSent is one message a drill node sent, and whether its PUBACK came.
type drillSent struct {
	id, conv, to string
	acked        bool
}

// drillLoad sends from one node until ctx ends, about 100 messages a second:
// round robin over the rooms, and every fourth message a DM (to the next
// node, or to dave, who is not connected). It returns every send once its
// outcome is known.
func drillLoad(ctx context.Context, t *testing.T, nick string, n *testNode) []drillSent {
	next := map[string]string{"alice": "bob", "bob": "carol", "carol": "alice"}
	var pending []*Sent
	var meta []drillSent
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		o := Outgoing{Room: drillRooms[i%len(drillRooms)], Body: fmt.Sprint("drill ", i)}
		if i%4 == 3 {
			o = Outgoing{To: next[nick], Body: o.Body}
			if i%8 == 7 {
				o.To = "dave"
			}
		}
		s, err := n.Send(context.Background(), o)
		if err != nil {
			t.Errorf("%s: send: %v", nick, err)
			break
		}
		pending = append(pending, s)
		meta = append(meta, drillSent{id: s.ID, conv: o.Room, to: o.To})
	}
	for i, s := range pending {
		select {
		case <-s.Done:
			meta[i].acked = s.Err == nil
		case <-time.After(60 * time.Second):
			t.Errorf("%s: message %s neither acknowledged nor failed after 60 s", nick, s.ID)
		}
	}
	return meta
}

// expectedDeliveries maps each user to the ids of the acknowledged messages
// they must be shown: every room message to everyone (all are members), each
// DM to its recipient.
func expectedDeliveries(all []drillSent) map[string]map[string]bool {
	want := map[string]map[string]bool{"alice": {}, "bob": {}, "carol": {}, "dave": {}}
	for _, s := range all {
		if !s.acked {
			continue
		}
		if s.to != "" {
			want[s.to][s.id] = true
			continue
		}
		for _, user := range []string{"alice", "bob", "carol"} {
			want[user][s.id] = true
		}
	}
	return want
}

func shownAll(msgs []Message, want map[string]bool) bool {
	seen := 0
	for _, m := range msgs {
		if want[m.Env.ID] {
			seen++
		}
	}
	return seen >= len(want)
}

// checkDrill asserts every wanted message shown, none twice, and each
// conversation's messages shown in room order.
func checkDrill(t *testing.T, nick string, msgs []Message, want map[string]bool) {
	t.Helper()
	shown := map[string]int{}
	last := map[string]uint64{}
	for _, m := range msgs {
		shown[m.Env.ID]++
		if shown[m.Env.ID] == 2 {
			t.Errorf("%s: message %s shown twice", nick, m.Env.ID)
		}
		if m.Env.RoomSeq != 0 && m.Env.RoomSeq <= last[m.Conv] {
			t.Errorf("%s: in %s, room_seq %d shown after %d", nick, m.Conv, m.Env.RoomSeq, last[m.Conv])
		}
		last[m.Conv] = max(last[m.Conv], m.Env.RoomSeq)
	}
	for id := range want {
		if shown[id] == 0 {
			t.Errorf("%s: acknowledged message %s never shown", nick, id)
		}
	}
}

// startBrokerProcess runs the broker binary on a free port it keeps across
// restarts, so the nodes reconnect to the same address.
func startBrokerProcess(t *testing.T, bin string, durability config.Durability) *brokertest.Process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	p := &brokertest.Process{Bin: bin, Args: []string{"-tcp", addr, "-http", "", "-data", t.TempDir(),
		"-durability", durability.String(), "-log-level", "info"}}
	p.Start(t)
	return p
}
