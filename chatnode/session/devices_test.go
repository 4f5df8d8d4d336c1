package session

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/config"
)

// These tests run several devices of one user against a broker with users,
// ACLs and the room log: catch-up per user (DMs to someone who has never
// connected, a new device, a lost state dir) and two devices online at once.

// authBroker starts a broker where every named user has the password
// <name>-pw and the rooms r1 and r2.
func authBroker(t *testing.T, names ...string) *brokertest.Broker {
	t.Helper()
	bc := brokertest.Config(t)
	pw := map[string]string{}
	for _, n := range names {
		pw[n] = n + "-pw"
	}
	bc.Auth.Users = brokertest.Users(t, pw, "r1", "r2")
	return brokertest.Start(t, bc)
}

// device is the configuration of one device of user: its own state dir
// ("" for none) and rooms.
func device(t *testing.T, url, user, stateDir string, rooms ...string) config.Node {
	t.Helper()
	cfg := nodeConfig(t, url, user, rooms...)
	cfg.Password = user + "-pw"
	cfg.StateDir = stateDir
	return cfg
}

// dm sends count DMs from n to peer (bodies dm1, dm2, ...) and waits for
// every PUBACK.
func dm(t *testing.T, n *testNode, peer string, count int) {
	t.Helper()
	for i := 1; i <= count; i++ {
		s, err := n.Send(context.Background(), Outgoing{To: peer, Body: "dm" + string(rune('0'+i))})
		if err != nil {
			t.Fatal(err)
		}
		waitAcked(t, []*Sent{s}, 10*time.Second)
	}
}

// privateFrom returns the DM bodies n showed from peer, in display order.
func privateFrom(n *testNode, peer string) []string {
	var out []string
	for _, m := range n.got.messages() {
		if m.Private && m.Env.From == peer {
			out = append(out, m.Env.Body)
		}
	}
	return out
}

func waitPrivate(t *testing.T, n *testNode, peer string, count int) {
	t.Helper()
	n.got.waitFor(t, 15*time.Second, "DMs from "+peer, func(c *collector) bool {
		k := 0
		for _, m := range c.msgs {
			if m.Private && m.Env.From == peer {
				k++
			}
		}
		return k >= count
	})
}

func TestOfflineDMsReachEveryDeviceOnce(t *testing.T) {
	b := authBroker(t, "alice", "bob")
	alice := startNode(t, device(t, b.URL, "alice", t.TempDir(), "r1"))
	dm(t, alice, "bob", 3) // bob has never connected

	phone := t.TempDir()
	bob1 := startNode(t, device(t, b.URL, "bob", phone))
	waitPrivate(t, bob1, "alice", 3)
	want := []string{"dm1", "dm2", "dm3"}
	if got := privateFrom(bob1, "alice"); !slices.Equal(got, want) {
		t.Fatalf("bob's first connect showed %q, want %q in order, once", got, want)
	}
	for _, m := range bob1.got.messages() {
		if m.Via != nodelog.ViaSync {
			t.Errorf("%s came via %s, want sync (caught up from the room log)", m.Env.Body, m.Via)
		}
	}

	bob2 := startNode(t, device(t, b.URL, "bob", t.TempDir())) // a second device, empty state
	waitPrivate(t, bob2, "alice", 3)
	if got := privateFrom(bob2, "alice"); !slices.Equal(got, want) {
		t.Fatalf("bob's second device showed %q, want %q", got, want)
	}
	if bob1.ClientID() == bob2.ClientID() {
		t.Fatalf("two devices share the client id %s", bob1.ClientID())
	}

	// The first device restarts on its state: nothing again. A new DM is
	// held back behind anything older it would show, so once it is shown
	// nothing older is still to come.
	id := bob1.ClientID()
	bob1.close(t)
	bob1 = startNode(t, device(t, b.URL, "bob", phone))
	if bob1.ClientID() != id {
		t.Errorf("restarted device has client id %s, want %s (kept in its state dir)", bob1.ClientID(), id)
	}
	dm(t, alice, "bob", 1)
	waitPrivate(t, bob1, "alice", 1)
	if got := privateFrom(bob1, "alice"); !slices.Equal(got, []string{"dm1"}) || len(bob1.got.messages()) != 1 {
		t.Fatalf("after a restart on its state bob showed %q, want only the new one", got)
	}
	waitPrivate(t, bob2, "alice", 4) // the other device, online, gets it live
}

func TestNewDeviceGetsMissedRoomsAndDMs(t *testing.T) {
	b := authBroker(t, "alice", "bob")
	alice := startNode(t, device(t, b.URL, "alice", t.TempDir(), "r1"))
	bob1 := startNode(t, device(t, b.URL, "bob", t.TempDir(), "r1"))
	waitOnline(t, "r1", alice, bob1)
	send(t, alice, "r1", 2)
	dm(t, alice, "bob", 2)
	waitPrivate(t, bob1, "alice", 2)
	bob1.close(t)
	send(t, alice, "r1", 3) // while no device of bob is online
	dm(t, alice, "bob", 1)

	// A new device, or the old one with its state dir lost: the room from
	// its history (join semantics), every DM conversation from its start.
	cfg := device(t, b.URL, "bob", t.TempDir(), "r1")
	cfg.History = 10
	bob2 := startNode(t, cfg)
	bob2.got.waitFor(t, 15*time.Second, "5 room messages and 3 DMs", func(c *collector) bool { return len(c.msgs) >= 8 })
	var room []uint64
	for _, m := range bob2.got.messages() {
		if !m.Private {
			room = append(room, m.Env.RoomSeq)
		}
	}
	if !slices.Equal(room, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("room r1 on the new device: room seqs %v, want 1..5", room)
	}
	if got := privateFrom(bob2, "alice"); !slices.Equal(got, []string{"dm1", "dm2", "dm1"}) {
		t.Errorf("DMs on the new device %q, want dm1 dm2 dm1", got)
	}
	dms := bob2.DMs(context.Background())
	if len(dms) != 1 || dms[0].Peer != "alice" || dms[0].Messages != 3 || dms[0].Unread != 3 {
		t.Errorf("DMs() = %+v, want alice with 3 messages, 3 unread", dms)
	}
	if dms = bob2.DMs(context.Background()); len(dms) != 1 || dms[0].Unread != 0 {
		t.Errorf("DMs() again = %+v, want unread reset to 0", dms)
	}
}

// twoDevicesFor is how long TestTwoDevicesOfOneUser keeps both devices
// online: a few seconds, or DISTCHAT_TWO_DEVICES_FOR (e.g. 1m).
func twoDevicesFor(t *testing.T) time.Duration {
	if v := os.Getenv("DISTCHAT_TWO_DEVICES_FOR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("DISTCHAT_TWO_DEVICES_FOR: %v", err)
		}
		return d
	}
	return 3 * time.Second
}

func TestTwoDevicesOfOneUser(t *testing.T) {
	b := authBroker(t, "alice", "bob", "carol")
	carol := startNode(t, device(t, b.URL, "carol", "", "r1")) // watches alice's presence
	laptop := startNode(t, device(t, b.URL, "alice", t.TempDir(), "r1", "r2"))
	phone := startNode(t, device(t, b.URL, "alice", t.TempDir(), "r1"))
	bob := startNode(t, device(t, b.URL, "bob", t.TempDir(), "r1"))
	waitOnline(t, "r1", carol, bob, phone)
	carol.got.waitFor(t, 10*time.Second, "alice online with 2 devices", func(*collector) bool {
		p, ok := carol.presenceOf("alice")
		return ok && p.Status == wire.Online && p.Devices == 2
	})

	// Bob talks in r1 and to alice for a while; both devices stay on.
	end := time.Now().Add(twoDevicesFor(t))
	tick := time.NewTicker(50 * time.Millisecond) // pacing only: every wait below is on an event
	defer tick.Stop()
	rooms, dms := 0, 0
	for time.Now().Before(end) {
		<-tick.C
		send(t, bob, "r1", 1)
		dm(t, bob, "alice", 1)
		rooms, dms = rooms+1, dms+1
	}
	want := map[[2]string]int{{"bob", "r1"}: rooms, {"bob", wire.DMConversation("alice", "bob")}: dms}
	for _, n := range []*testNode{laptop, phone} {
		n.got.waitFor(t, 20*time.Second, "every message on each device", func(c *collector) bool { return len(c.msgs) >= rooms+dms })
		checkComplete(t, n, want)
		n.got.mu.Lock()
		for _, st := range n.got.status {
			if st.Err != nil {
				t.Errorf("%s: connection lost (%v): the devices took the client id from each other", n.ClientID(), st.Err)
			}
		}
		n.got.mu.Unlock()
	}

	// One device quits: alice stays online (she left r2 with it).
	laptop.close(t)
	carol.got.waitFor(t, 10*time.Second, "alice left r2 with her laptop", func(c *collector) bool {
		for _, p := range c.pres {
			if p.Presence.User == "alice" && slices.Contains(p.Left, "r2") {
				return true
			}
		}
		return false
	})
	if p, _ := carol.presenceOf("alice"); p.Status != wire.Online || p.Devices != 1 {
		t.Errorf("alice after her laptop quit: %+v, want online on 1 device", p)
	}
	// A device that dies (no DISCONNECT: its Will speaks) does not take her
	// offline either.
	px := newProxy(t, b.Addr)
	tablet := startNode(t, device(t, px.url(), "alice", t.TempDir(), "r1", "r2"))
	carol.got.waitFor(t, 10*time.Second, "alice back in r2 on her tablet", func(*collector) bool {
		p, _ := carol.presenceOf("alice")
		return p.Devices == 2 && slices.Contains(p.Rooms, "r2")
	})
	px.cut(true)
	carol.got.waitFor(t, 10*time.Second, "alice's tablet gone", func(*collector) bool {
		p, _ := carol.presenceOf("alice")
		return p.Devices == 1 && !slices.Contains(p.Rooms, "r2")
	})
	if p, _ := carol.presenceOf("alice"); p.Status != wire.Online {
		t.Errorf("alice after her tablet died: %+v, want online", p)
	}
	tablet.close(t)
	// The last device goes: now she is offline.
	carol.got.mu.Lock()
	for _, p := range carol.got.pres {
		if p.Presence.User == "alice" && p.Presence.Status == wire.Offline {
			t.Errorf("carol saw alice offline while a device of hers was online")
		}
	}
	carol.got.mu.Unlock()
	phone.close(t)
	carol.got.waitFor(t, 10*time.Second, "alice offline", func(*collector) bool {
		p, ok := carol.presenceOf("alice")
		return ok && p.Status == wire.Offline
	})
}

// TestTwoDevicesOnMosquitto: against a broker that keeps no presence per
// user, two devices still have their own client ids (no takeover), and when
// one quits, the other says online again: watchers see the user offline
// only for a moment.
func TestTwoDevicesOnMosquitto(t *testing.T) {
	url := startMosquitto(t)
	carol := startNode(t, nodeConfig(t, url, "carol", "r1"))
	laptopCfg := nodeConfig(t, url, "alice", "r1")
	laptopCfg.StateDir = t.TempDir()
	laptop := startNode(t, laptopCfg)
	phoneCfg := nodeConfig(t, url, "alice", "r1")
	phoneCfg.StateDir = t.TempDir()
	phone := startNode(t, phoneCfg)
	carol.got.waitFor(t, 10*time.Second, "alice online", presenceOf(carol, "alice", wire.Online))
	laptop.close(t)
	carol.got.waitFor(t, 10*time.Second, "alice offline, then online again from her phone", func(c *collector) bool {
		offline := false
		for _, p := range c.pres {
			if p.Presence.User != "alice" {
				continue
			}
			if p.Presence.Status == wire.Offline {
				offline = true
			} else if offline && p.Presence.Device == phone.ClientID() {
				return true
			}
		}
		return false
	})
	phone.got.mu.Lock()
	defer phone.got.mu.Unlock()
	for _, st := range phone.got.status {
		if st.Err != nil {
			t.Errorf("phone lost its connection (%v): the devices took the client id from each other", st.Err)
		}
	}
}
