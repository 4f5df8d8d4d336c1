package broker_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// A client id that names a user (u, "u-...", "...-u"; chat nodes use
// "distchat-<nick>") is that user's alone: Mochi would otherwise hand its
// persistent session (subscriptions, queued DMs) to whoever connects with it
// and kick the owner off. Other ids work for everyone.
func TestClientIDBelongsToItsUser(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	cfg.Auth.Anonymous = true
	b, lines := loggedBroker(t, cfg)
	const owned, reserved = "client id belongs to another user", "client id is reserved for the broker"
	for _, tc := range []struct {
		user, id      string
		reason, owner string // "" when accepted
	}{
		{"alice", "distchat-alice", "", ""},
		{"bob", "distchat-alice", owned, "alice"},
		{"bob", "alice", owned, "alice"},
		{"bob", "alice-phone", owned, "alice"},
		{"", "distchat-bob", owned, "bob"},
		{"alice", "alice-bob", owned, "bob"}, // two owners: neither may use it
		{"bob", "k7f3-x9", "", ""},
		{"alice", "k7f3-y1", "", ""},
		{"", "watcher-42", "", ""},
		{"carol", "carol", "", ""},
		{"alice", "inline", reserved, ""}, // Mochi's inline client (the room log's)
	} {
		t.Run(tc.user+" as "+tc.id, func(t *testing.T) {
			c, err := dial(t, b.URL, clientOpts{id: tc.id, user: tc.user, pass: tc.user + "-pw"})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				c.Disconnect(0)
				return
			}
			if err == nil {
				c.Disconnect(0)
				t.Fatal("connected; want refused")
			}
			l := lines.Wait(t, wait, func(m map[string]any) bool {
				return m["event"] == "auth_failed" && m["client_id"] == tc.id && m["user"] == tc.user
			})
			if l["reason"] != tc.reason || (tc.owner != "" && l["client_id_owner"] != tc.owner) || l["level"] != "warning" {
				t.Errorf("logged %v, want reason %q, owner %q at WARN", l, tc.reason, tc.owner)
			}
		})
	}
}

// bob cannot take over alice's live session (kicking her off) nor her
// offline one (stealing her queued DMs), and an id held by a persistent
// session of one user is refused to another.
func TestSessionTakeoverRefused(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b, _ := loggedBroker(t, cfg)
	got := make(chan msg, 10)
	aliceOpts := clientOpts{id: "distchat-alice", user: "alice", pass: "alice-pw", persistent: true, onMsg: got}
	alice := mustDial(t, b.URL, aliceOpts)
	subscribe(t, alice, wire.DMFilter("alice"), nil)
	if _, err := dial(t, b.URL, clientOpts{id: "distchat-alice", user: "bob", pass: "bob-pw", persistent: true}); err == nil {
		t.Fatal("bob connected with alice's client id")
	}
	bob := mustDial(t, b.URL, clientOpts{id: "distchat-bob", user: "bob", pass: "bob-pw", persistent: true})
	publish(t, bob, wire.DMTopic("alice", "bob"), envelope(t, "", "bob", "online"))
	expect(t, got, msg{wire.DMTopic("alice", "bob"), "online"}) // alice was not kicked

	alice.Disconnect(100)
	publish(t, bob, wire.DMTopic("alice", "bob"), envelope(t, "", "bob", "queued"))
	if _, err := dial(t, b.URL, clientOpts{id: "distchat-alice", user: "bob", pass: "bob-pw", persistent: true}); err == nil {
		t.Fatal("bob resumed alice's offline session")
	}
	mustDial(t, b.URL, aliceOpts)
	expectIgnoring(t, got, msg{wire.DMTopic("alice", "bob"), "online"}, msg{wire.DMTopic("alice", "bob"), "queued"})

	// A neutral id is first come, first served while its session lives.
	laptop := mustDial(t, b.URL, clientOpts{id: "laptop-9", user: "bob", pass: "bob-pw", persistent: true})
	laptop.Disconnect(100)
	if _, err := dial(t, b.URL, clientOpts{id: "laptop-9", user: "carol", pass: "carol-pw", persistent: true}); err == nil {
		t.Fatal("carol took over bob's persistent session laptop-9")
	}
	mustDial(t, b.URL, clientOpts{id: "laptop-9", user: "bob", pass: "bob-pw", persistent: true})
}

// Publishes under chat/ that do not follow the topic scheme are refused in
// every mode, open development mode included, and the log says which part
// is wrong.
func TestMalformedChatTopicRefused(t *testing.T) {
	for _, mode := range []string{"open", "users"} {
		t.Run(mode, func(t *testing.T) {
			cfg := brokertest.Config(t)
			if mode == "users" {
				cfg.Auth.Users = demoUsers(t)
			}
			b, lines := loggedBroker(t, cfg)
			got := make(chan msg, 10)
			watcher := mustDial(t, b.URL, clientOpts{id: "carol-watch", user: "carol", pass: "carol-pw"})
			if mode == "open" {
				subscribe(t, watcher, "#", got)
			} else {
				subscribe(t, watcher, wire.RoomFilter("lobby"), got)
			}
			for i, tc := range []struct{ topic, reason string }{
				{"chat/rooms/lo bby/alice", `room name "lo bby" contains white space`},
				{"chat/rooms/lobby/al\tice", `user name "al\tice" contains the control character U+0009`},
				{"chat/rooms/lobby", "chat/rooms topics have 4 levels, this one has 3"},
				{"chat/rooms/lobby/alice/extra", "chat/rooms topics have 4 levels, this one has 5"},
				{"chat/lobby/alice", `unknown kind "lobby"`},
				{"chat", "no kind level"},
			} {
				t.Run(tc.topic, func(t *testing.T) {
					c := mustDial(t, b.URL, clientOpts{id: fmt.Sprint("alice-", i), user: "alice", pass: "alice-pw"})
					c.Publish(tc.topic, 1, false, envelope(t, "lobby", "alice", "malformed")).WaitTimeout(wait / 10)
					l := lines.Wait(t, wait, func(m map[string]any) bool {
						return m["event"] == "acl_denied" && m["topic"] == tc.topic && m["action"] == "write"
					})
					if r, _ := l["reason"].(string); !strings.Contains(r, tc.reason) || l["level"] != "warning" {
						t.Errorf("logged %v, want a WARN whose reason names %q", l, tc.reason)
					}
				})
			}
			alice := mustDial(t, b.URL, clientOpts{id: "alice", user: "alice", pass: "alice-pw"})
			publish(t, alice, wire.RoomTopic("lobby", "alice"), envelope(t, "lobby", "alice", "marker"))
			expect(t, got, msg{wire.RoomTopic("lobby", "alice"), "marker"})
			select {
			case m := <-got:
				t.Fatalf("a malformed publish was routed: %+v", m)
			default:
			}
		})
	}
}

// A refused SUBSCRIBE filter is an operator's business (a misconfigured
// node, a probe): it is logged at WARN with the reason, not at DEBUG.
func TestRefusedSubscribeLoggedAtWarn(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b, lines := loggedBroker(t, cfg)
	alice := mustDial(t, b.URL, clientOpts{id: "alice", user: "alice", pass: "alice-pw"})
	for _, filter := range []string{"chat/#", wire.DMFilter("bob"), "chat/rooms/dev/bob"} {
		if code := subscribe(t, alice, filter, nil); code != 0x80 {
			t.Fatalf("%s: SUBACK %#x, want 0x80", filter, code)
		}
		l := lines.Wait(t, wait, func(m map[string]any) bool {
			return m["event"] == "acl_denied" && m["action"] == "subscribe" && m["topic"] == filter
		})
		if l["level"] != "warning" || l["user"] != "alice" || l["reason"] == nil {
			t.Errorf("%s: logged %v, want WARN with user and reason", filter, l)
		}
	}
}
