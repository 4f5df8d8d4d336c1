package broker_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// noSecrets fails if any broker log line carries chat text or a password.
func noSecrets(t *testing.T, lines *brokertest.Lines) {
	t.Helper()
	for _, l := range lines.All() {
		s := fmt.Sprint(l)
		if strings.Contains(s, "secret chat text") || strings.Contains(s, "-pw") {
			t.Errorf("log line leaks a payload or password: %s", s)
		}
	}
}

func loggedBroker(t *testing.T, cfg config.Broker) (*brokertest.Broker, *brokertest.Lines) {
	t.Helper()
	cfg.LogLevel = "debug"
	lines := new(brokertest.Lines)
	b := brokertest.StartLogged(t, cfg, lines)
	t.Cleanup(func() { noSecrets(t, lines) })
	return b, lines
}

func event(name string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["event"] == name }
}

func TestQoS1RoundTrip(t *testing.T) {
	for _, mode := range []string{"open", "users"} {
		t.Run(mode, func(t *testing.T) {
			cfg := brokertest.Config(t)
			if mode == "users" {
				cfg.Auth.Users = demoUsers(t)
			}
			b, _ := loggedBroker(t, cfg)
			got := make(chan paho.Message, 10)
			alice := mustDial(t, b.URL, clientOpts{id: "a", user: "alice", pass: "alice-pw"})
			tok := alice.Subscribe(wire.RoomFilter("lobby"), 1, func(_ paho.Client, m paho.Message) { got <- m })
			if !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			if code := tok.(*paho.SubscribeToken).Result()[wire.RoomFilter("lobby")]; code != 1 {
				t.Fatalf("subscribe granted %#x, want QoS 1", code)
			}
			bob := mustDial(t, b.URL, clientOpts{id: "b", user: "bob", pass: "bob-pw"})
			publish(t, bob, wire.RoomTopic("lobby", "bob"), envelope(t, "lobby", "bob", "m1"))
			select {
			case m := <-got:
				e, err := wire.DecodeEnvelope(m.Payload(), 0)
				if m.Topic() != wire.RoomTopic("lobby", "bob") || err != nil || e.ID != "m1" {
					t.Errorf("delivered %s %q (%v), want m1 on %s", m.Topic(), m.Payload(), err, wire.RoomTopic("lobby", "bob"))
				}
				if m.Qos() != 1 {
					t.Errorf("delivered at QoS %d, want 1", m.Qos())
				}
			case <-time.After(wait):
				t.Fatal("nothing delivered")
			}
			// Mochi counts a message sent after writing it, which can be just
			// after the subscriber has it: wait for the counters to catch up.
			deadline := time.Now().Add(wait)
			st := b.Stats(t)
			for (st.MessagesReceived < 1 || st.MessagesSent < 1) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				st = b.Stats(t)
			}
			if st.MessagesReceived < 1 || st.MessagesSent < 1 || st.ClientsConnected != 2 || st.Subscriptions < 1 {
				t.Errorf("stats after one round trip: %+v", st)
			}
		})
	}
}

func TestAuthRefused(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b, lines := loggedBroker(t, cfg)
	for _, tc := range []struct{ name, user, pass, reason string }{
		{"wrong password", "alice", "bob-pw", "wrong password"},
		{"unknown user", "mallory", "mallory-pw", "unknown user"},
		{"no credentials", "", "", "no credentials and anonymous access is off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, b.URL, clientOpts{id: "x-" + tc.user, user: tc.user, pass: tc.pass})
			if err == nil {
				c.Disconnect(0)
				t.Fatal("connected; want refused")
			}
			lines.Wait(t, wait, func(m map[string]any) bool {
				return m["event"] == "auth_failed" && m["reason"] == tc.reason && m["user"] == tc.user && m["client_id"] == "x-"+tc.user
			})
		})
	}
	// The right password still works after a wrong one, and twice (cached).
	for i := range 2 {
		c := mustDial(t, b.URL, clientOpts{id: fmt.Sprint("ok", i), user: "alice", pass: "alice-pw"})
		c.Disconnect(0)
	}
	if st := b.Stats(t); st.AuthFailures != 3 {
		t.Errorf("auth_failures = %d, want 3", st.AuthFailures)
	}
}

// A user publishing as someone else (or outside the scheme) is refused and
// nothing reaches subscribers: alice receives bob's honest marker message
// and nothing before it.
func TestPublishAsAnotherUserRefused(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b, lines := loggedBroker(t, cfg)
	got := make(chan msg, 10)
	alice := mustDial(t, b.URL, clientOpts{id: "alice", user: "alice", pass: "alice-pw"})
	subscribe(t, alice, wire.RoomFilter("lobby"), got)
	subscribe(t, alice, wire.DMFilter("alice"), got)
	subscribe(t, alice, wire.PresenceFilter, got)
	forged := []string{
		wire.RoomTopic("lobby", "alice"),   // as alice
		wire.RoomTopic("lobby", "carol"),   // as carol
		wire.RoomTopic("dev", "bob"),       // a room bob is not granted
		wire.DMTopic("alice", "carol"),     // a DM as carol
		wire.PresenceTopic("alice"),        // alice's presence
		wire.InboxTopic("alice"),           // alice's catch-up inbox
		wire.SyncTopic("alice"),            // a catch-up request as alice
		"elsewhere/outside/the/scheme",     // outside chat/
		"chat/rooms/lobby/bob/extra/level", // malformed
	}
	for i, topic := range forged {
		t.Run(topic, func(t *testing.T) {
			bob := mustDial(t, b.URL, clientOpts{id: fmt.Sprint("bob-forger-", i), user: "bob", pass: "bob-pw"})
			// Mochi disconnects a v3.1.1 client whose QoS 1 publish is not
			// authorized, so the token fails or never completes: either way
			// the broker must log the denial.
			bob.Publish(topic, 1, false, envelope(t, "lobby", "bob", "forged")).WaitTimeout(wait / 10)
			lines.Wait(t, wait, func(m map[string]any) bool {
				return m["event"] == "acl_denied" && m["topic"] == topic && m["user"] == "bob" && m["action"] == "write"
			})
		})
	}
	// Mochi logs the refused packet, payload included, at WARN (see
	// docs/mochi-and-paho.md): it must reach the log redacted (noSecrets checks the rest).
	lines.Wait(t, wait, func(m map[string]any) bool {
		return m["msg"] == "error processing packet" && m["pk"] == "[redacted]"
	})
	bob := mustDial(t, b.URL, clientOpts{id: "bob", user: "bob", pass: "bob-pw"})
	publish(t, bob, wire.RoomTopic("lobby", "bob"), envelope(t, "lobby", "bob", "marker"))
	publish(t, bob, wire.DMTopic("alice", "bob"), envelope(t, "", "bob", "dm-marker"))
	expect(t, got, msg{wire.RoomTopic("lobby", "bob"), "marker"}, msg{wire.DMTopic("alice", "bob"), "dm-marker"})
	select {
	case m := <-got:
		t.Fatalf("a forged message reached alice: %+v", m)
	default:
	}
	if st := b.Stats(t); st.ACLDenials < int64(len(forged)) {
		t.Errorf("acl_denials = %d, want at least %d", st.ACLDenials, len(forged))
	}
}

func TestSubscribeACL(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	cfg.Auth.Anonymous = true
	b := brokertest.Start(t, cfg)
	const refused = 0x80
	for _, tc := range []struct {
		user, filter string
		want         byte
	}{
		{"alice", "chat/rooms/lobby/+", 1},
		{"alice", "chat/rooms/lobby/bob", 1},
		{"alice", "chat/rooms/lobby/#", 1},
		{"alice", "chat/rooms/dev/+", refused},
		{"alice", "chat/rooms/+/+", refused},
		{"alice", "chat/rooms/#", refused},
		{"alice", "chat/#", refused},
		{"alice", "#", refused},
		{"alice", "chat/dm/alice/+", 1},
		{"alice", "chat/dm/bob/+", refused},
		{"alice", "chat/dm/+/alice", refused},
		{"alice", "chat/presence/+", 1},
		{"alice", "chat/presence/bob", 1},
		{"alice", "chat/inbox/alice", 1},
		{"alice", "chat/inbox/bob", refused},
		{"alice", "chat/inbox/+", refused},
		{"alice", "chat/sync/alice", refused},
		{"alice", "$SYS/#", refused},
		{"carol", "chat/rooms/+/+", 1},
		{"carol", "chat/rooms/dev/+", 1},
		{"carol", "chat/rooms/#", 1},
		{"", "chat/#", 1}, // an operator's mosquitto_sub; deliveries are filtered
		{"", "chat/rooms/+/+", 1},
		{"", "$SYS/#", refused},
	} {
		t.Run(tc.user+" "+tc.filter, func(t *testing.T) {
			c := mustDial(t, b.URL, clientOpts{id: "s-" + tc.user, user: tc.user, pass: tc.user + "-pw"})
			if got := subscribe(t, c, tc.filter, nil); got != tc.want {
				t.Errorf("SUBACK %#x, want %#x", got, tc.want)
			}
			c.Disconnect(0)
		})
	}
}

// Anonymous clients read rooms and presence (chat/# works for an operator),
// never direct messages, and cannot publish.
func TestAnonymousReadOnly(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	cfg.Auth.Anonymous = true
	b, lines := loggedBroker(t, cfg)
	got := make(chan msg, 10)
	anon := mustDial(t, b.URL, clientOpts{id: "watcher"})
	subscribe(t, anon, wire.AllChatFilter, got)
	alice := mustDial(t, b.URL, clientOpts{id: "alice", user: "alice", pass: "alice-pw"})
	publish(t, alice, wire.DMTopic("bob", "alice"), envelope(t, "", "alice", "dm"))
	publish(t, alice, wire.PresenceTopic("alice"), []byte(`{"v":1,"user":"alice","status":"online"}`))
	publish(t, alice, wire.RoomTopic("lobby", "alice"), envelope(t, "lobby", "alice", "room"))
	// The presence hook rewrites a presence into the user's over all devices.
	expect(t, got, msg{wire.PresenceTopic("alice"), `{"v":1,"user":"alice","status":"online","at_ns":0,"devices":1}`}, msg{wire.RoomTopic("lobby", "alice"), "room"})
	select {
	case m := <-got:
		t.Fatalf("anonymous watcher received %+v", m)
	default:
	}
	anon.Publish(wire.RoomTopic("lobby", "alice"), 1, false, envelope(t, "lobby", "alice", "anon")).WaitTimeout(wait / 10)
	lines.Wait(t, wait, func(m map[string]any) bool {
		return m["event"] == "acl_denied" && m["client_id"] == "watcher" && m["action"] == "write"
	})
}

func TestHealthzAndStats(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	resp, err := http.Get("http://" + b.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil || resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz: %d %q %v", resp.StatusCode, body, err)
	}
	resp, err = http.Get("http://" + b.HTTPAddr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{`"clients_connected"`, `"subscriptions"`, `"messages_received"`, `"messages_sent"`,
		`"inflight"`, `"drops"`, `"auth_failures"`, `"acl_denials"`, `"room_log"`}
	for _, cause := range broker.DropCauses {
		keys = append(keys, `"`+cause+`"`)
	}
	for _, key := range keys {
		if !strings.Contains(string(body), key) {
			t.Errorf("/stats lacks %s:\n%s", key, body)
		}
	}
}

// Nobody publishes to $SYS, not even in open development mode where our hook
// allows everything: Mochi ignores such publishes before any hook runs (our
// ACL refuses them as well, see TestAllowed).
func TestSysPublishIgnoredInOpenMode(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	got := make(chan msg, 10)
	c := mustDial(t, b.URL, clientOpts{id: "open"})
	subscribe(t, c, "$SYS/forged", got)
	subscribe(t, c, "test/marker", got)
	c.Publish("$SYS/forged", 0, false, "forged").WaitTimeout(wait)
	publish(t, c, "test/marker", []byte("marker"))
	expect(t, got, msg{"test/marker", "marker"})
	select {
	case m := <-got:
		t.Fatalf("received %+v", m)
	default:
	}
}

// BenchmarkQoS1RoundTrip is one paho publisher → broker → one paho
// subscriber, QoS 1, one message at a time (publish, wait for the PUBACK,
// wait for the delivery), users and ACLs on, with and without the session
// store and with the room log in each durability mode.
func BenchmarkQoS1RoundTrip(b *testing.B) {
	for _, tc := range []struct {
		store      string
		roomLog    bool
		durability config.Durability
	}{{"none", false, config.DurabilityProcess}, {"pebble", false, config.DurabilityProcess},
		{"pebble", true, config.DurabilityProcess}, {"pebble", true, config.DurabilityMachine}} {
		b.Run(fmt.Sprintf("store=%s/room_log=%v/durability=%s", tc.store, tc.roomLog, tc.durability), func(b *testing.B) {
			cfg := brokertest.Config(b)
			cfg.Auth.Users = demoUsers(b)
			cfg.RoomLog.Enabled = tc.roomLog
			cfg.Durability = tc.durability
			if tc.store == "none" {
				cfg.DataDir = ""
			}
			br := brokertest.Start(b, cfg)
			got := make(chan msg, 1)
			alice := mustDial(b, br.URL, clientOpts{id: "alice", user: "alice", pass: "alice-pw"})
			subscribe(b, alice, wire.RoomFilter("lobby"), got)
			bob := mustDial(b, br.URL, clientOpts{id: "bob", user: "bob", pass: "bob-pw"})
			topic := wire.RoomTopic("lobby", "bob")
			payload := envelope(b, "lobby", "bob", "bench")
			for b.Loop() {
				publish(b, bob, topic, payload)
				<-got
			}
		})
	}
}

func TestWebSocketListener(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.WS = "127.0.0.1:0"
	b := brokertest.Start(t, cfg)
	ws := b.Server.WSAddr()
	if ws == "" || strings.HasSuffix(ws, ":0") {
		t.Fatalf("WSAddr() = %q", ws)
	}
	got := make(chan msg, 1)
	sub := mustDial(t, "ws://"+ws+"/", clientOpts{id: "ws-sub"})
	subscribe(t, sub, wire.RoomFilter("lobby"), got)
	pub := mustDial(t, b.URL, clientOpts{id: "tcp-pub"})
	publish(t, pub, wire.RoomTopic("lobby", "tcp-pub"), envelope(t, "lobby", "tcp-pub", "over-ws"))
	expect(t, got, msg{wire.RoomTopic("lobby", "tcp-pub"), "over-ws"})
}
