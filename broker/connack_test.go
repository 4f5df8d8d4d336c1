package broker_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/distchat/distchat/broker/brokertest"
)

func rawFrom(c net.Conn) *rawClient { return &rawClient{conn: c, r: bufio.NewReaderSize(c, 1<<16)} }

// connectPacket is a clean-session CONNECT of MQTT version 4 (3.1.1) or 5
// with keep-alive off; a nil user or pass leaves its flag off, and an empty
// one sets the flag with a zero-length value.
func connectPacket(version byte, id string, user, pass *string) []byte {
	flags := byte(0x02)
	if user != nil {
		flags |= 0x80
	}
	if pass != nil {
		flags |= 0x40
	}
	body := append(mqttString("MQTT"), version, flags, 0, 0)
	if version == 5 {
		body = append(body, 0) // no properties
	}
	body = append(body, mqttString(id)...)
	if user != nil {
		body = append(body, mqttString(*user)...)
	}
	if pass != nil {
		body = append(body, mqttString(*pass)...)
	}
	return packet(0x10, body)
}

func ptr(s string) *string { return &s }

// CONNACK codes are those of the client's protocol version: MQTT 3.1.1 has
// only 0-5 (4: bad user name or password, an empty password included; 5:
// not authorized), MQTT 5 clients get 0x86 and 0x87.
func TestConnackCodesPerProtocolVersion(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b, lines := loggedBroker(t, cfg)
	for _, tc := range []struct {
		name       string
		id         string
		user, pass *string
		v4, v5     byte
	}{
		{"accepted", "ok", ptr("alice"), ptr("alice-pw"), 0, 0},
		{"wrong password", "x", ptr("alice"), ptr("bob-pw"), 4, 0x86},
		{"empty password", "x", ptr("alice"), ptr(""), 4, 0x86},
		{"no password", "x", ptr("alice"), nil, 4, 0x86},
		{"no credentials", "x", nil, nil, 4, 0x86},
		{"another user's client id", "distchat-bob", ptr("alice"), ptr("alice-pw"), 5, 0x87},
		{"the broker's client id", "inline", ptr("alice"), ptr("alice-pw"), 5, 0x87},
	} {
		for _, version := range []byte{4, 5} {
			t.Run(fmt.Sprintf("%s/v%d", tc.name, version), func(t *testing.T) {
				want := map[byte]byte{4: tc.v4, 5: tc.v5}[version]
				c := rawFrom(dialFrom(t, "127.0.0.1", b.Addr))
				c.write(t, connectPacket(version, tc.id, tc.user, tc.pass))
				typ, body := c.read(t)
				if typ != 0x20 || len(body) < 2 || body[1] != want {
					t.Fatalf("got packet %#x %v, want CONNACK code %#x", typ, body, want)
				}
				if want != 0 {
					closedByBroker(t, c.conn)
				}
			})
		}
	}
	lines.Wait(t, wait, func(m map[string]any) bool { return m["event"] == "auth_failed" && m["reason"] == "empty password" })
}

// paho (MQTT 3.1.1) reports the refusals as what they are.
func TestPahoSeesRefusalReasons(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b := brokertest.Start(t, cfg)
	for _, tc := range []struct {
		name string
		o    clientOpts
		want error
	}{
		{"wrong password", clientOpts{id: "x1", user: "alice", pass: "bob-pw"}, pahopackets.ErrorRefusedBadUsernameOrPassword},
		{"empty password", clientOpts{id: "x2", user: "alice"}, pahopackets.ErrorRefusedBadUsernameOrPassword},
		{"another user's client id", clientOpts{id: "distchat-bob", user: "alice", pass: "alice-pw"}, pahopackets.ErrorRefusedNotAuthorised},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, b.URL, tc.o)
			if err == nil {
				c.Disconnect(0)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("connect: %v, want %v", err, tc.want)
			}
		})
	}
}

// A 64 KiB user name or client id (MQTT allows 65535 bytes) is logged
// clipped to its first bytes and its length, never in full.
func TestLongClientStringsClippedInLogs(t *testing.T) {
	long := strings.Repeat("m", 65535)
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b, lines := loggedBroker(t, cfg)
	for _, o := range []clientOpts{
		{id: "x", user: long}, // an empty password: refused without a bcrypt
		{id: long, user: "alice", pass: "wrong"},
	} {
		if c, err := dial(t, b.URL, o); err == nil {
			c.Disconnect(0)
			t.Fatal("connected; want refused")
		}
	}
	clipped := strings.Repeat("m", 64) + "…(65535 bytes)"
	lines.Wait(t, wait, func(m map[string]any) bool { return m["event"] == "auth_failed" && m["user"] == clipped })
	lines.Wait(t, wait, func(m map[string]any) bool { return m["event"] == "auth_failed" && m["client_id"] == clipped })
	for _, m := range lines.All() {
		if s := fmt.Sprint(m); strings.Contains(s, strings.Repeat("m", 65)) {
			t.Errorf("a log line carries more than 64 bytes of the long string (%d bytes)", len(s))
		}
	}
}

// An MQTT 3.1.1 CONNECT that Mochi's own checks refuse gets a 3.1.1 code,
// or, when malformed, the connection closed without a CONNACK (3.1.1 has no
// code for it); Mochi alone answers 0x80 and 0x82, which 3.1.1 lacks.
func TestConnack311ForMochisOwnChecks(t *testing.T) {
	b, lines := loggedBroker(t, brokertest.Config(t))
	raw := func(level, flags byte, id string) []byte {
		body := append(mqttString("MQTT"), level, flags, 0, 0)
		return packet(0x10, append(body, mqttString(id)...))
	}
	for _, tc := range []struct {
		name    string
		connect []byte
		code    int // -1: closed without a CONNACK
		reason  string
	}{
		{"persistent session without a client id", raw(4, 0x00, ""), 2, "persistent session without a client id"},
		{"unknown protocol level", raw(6, 0x02, "x"), 1, "protocol violation: protocol version"},
		{"reserved flag bit set", raw(4, 0x03, "x"), -1, "protocol violation: reserved bit not 0"},
		{"will retain without a will", raw(4, 0x22, "x"), -1, "protocol violation: will flag surplus retain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawFrom(dialFrom(t, "127.0.0.1", b.Addr))
			c.write(t, tc.connect)
			if tc.code >= 0 {
				if typ, body := c.read(t); typ != 0x20 || len(body) != 2 || int(body[1]) != tc.code {
					t.Fatalf("got packet %#x %v, want a 3.1.1 CONNACK with code %d", typ, body, tc.code)
				}
			}
			closedByBroker(t, c.conn)
			lines.Wait(t, wait, func(m map[string]any) bool {
				return m["event"] == "connect_refused" && m["reason"] == tc.reason && m["remote"] == c.conn.LocalAddr().String()
			})
		})
	}
}
