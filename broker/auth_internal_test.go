package broker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/config"
)

func testAuth(t *testing.T, anonymous bool) (*authHook, *counters) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Auth{Anonymous: anonymous, Users: []config.User{
		{Name: "alice", PasswordHash: string(hash), Rooms: []string{"lobby"}},
		{Name: "carol", PasswordHash: string(hash), AllRooms: true},
		{Name: "dave", PasswordHash: string(hash)},
	}}
	log := logrus.New()
	log.SetOutput(io.Discard)
	c := new(counters)
	return newAuthHook(cfg, false, logrus.NewEntry(log), c), c
}

func TestAllowed(t *testing.T) {
	h, _ := testAuth(t, true)
	for _, tc := range []struct {
		user, topic string
		write, want bool
	}{
		{"alice", "chat/rooms/lobby/alice", true, true},
		{"alice", "chat/rooms/lobby/bob", true, false},
		{"alice", "chat/rooms/dev/alice", true, false},
		{"alice", "chat/rooms/lobby/bob", false, true},
		{"alice", "chat/rooms/dev/bob", false, false},
		{"carol", "chat/rooms/dev/carol", true, true},
		{"carol", "chat/rooms/anything/bob", false, true},
		{"dave", "chat/rooms/lobby/dave", true, false}, // no rooms: DMs and presence only
		{"dave", "chat/dm/alice/dave", true, true},
		{"alice", "chat/dm/bob/alice", true, true},
		{"alice", "chat/dm/bob/carol", true, false},
		{"alice", "chat/dm/alice/bob", false, true},
		{"alice", "chat/dm/bob/alice", false, false}, // nobody reads another's DMs, not even their own copy
		{"alice", "chat/presence/alice", true, true},
		{"alice", "chat/presence/bob", true, false},
		{"alice", "chat/presence/bob", false, true},
		{"alice", "chat/sync/alice", true, true},
		{"alice", "chat/sync/bob", true, false},
		{"alice", "chat/sync/alice", false, false},
		{"alice", "chat/inbox/alice", false, true},
		{"alice", "chat/inbox/alice", true, false},
		{"alice", "chat/inbox/bob", false, false},
		{"alice", "$SYS/broker/uptime", true, false},
		{"alice", "$SYS/broker/uptime", false, false},
		{"alice", "other/topic", true, false},
		{"alice", "chat/rooms/lobby", true, false},
		{"alice", "chat/rooms/lobby/alice/x", true, false},
		{"mallory", "chat/rooms/lobby/mallory", true, false},
		{"", "chat/rooms/lobby/alice", false, true},
		{"", "chat/presence/alice", false, true},
		{"", "chat/dm/alice/bob", false, false},
		{"", "chat/inbox/alice", false, false},
		{"", "chat/rooms/lobby/alice", true, false},
		{"", "chat/#", false, true},
		{"", "chat/#", true, false},
	} {
		if got := h.allowed(tc.user, tc.topic, tc.write); got != tc.want {
			t.Errorf("allowed(%q, %q, write=%v) = %v, want %v", tc.user, tc.topic, tc.write, got, tc.want)
		}
	}
}

func connectPacket(user, pass string) packets.Packet {
	return packets.Packet{Connect: packets.ConnectParams{Username: []byte(user), Password: []byte(pass),
		UsernameFlag: user != "", PasswordFlag: pass != ""}}
}

// A reconnect storm costs one bcrypt per user, not one per CONNECT; a wrong
// password is still checked (and refused) every time.
func TestAuthCachesVerifiedPassword(t *testing.T) {
	h, c := testAuth(t, false)
	calls := 0
	real := h.compare
	h.compare = func(hash, pw []byte) error { calls++; return real(hash, pw) }
	cl := &mqtt.Client{ID: "x"}
	for range 100 {
		if h.authenticate(cl, connectPacket("alice", "pw")) != connectAccepted {
			t.Fatal("alice refused")
		}
	}
	if calls != 1 {
		t.Errorf("%d bcrypt comparisons for 100 connects, want 1", calls)
	}
	for range 3 {
		if h.authenticate(cl, connectPacket("alice", "wrong")) != connectBadCredentials {
			t.Fatal("wrong password accepted")
		}
	}
	if calls != 4 || c.authFailures.Load() != 3 {
		t.Errorf("%d comparisons, %d failures; want 4, 3", calls, c.authFailures.Load())
	}
	if h.authenticate(cl, connectPacket("alice", "pw")) != connectAccepted || calls != 4 {
		t.Errorf("right password after wrong ones: %d comparisons, want still 4 (cached)", calls)
	}
	if h.authenticate(cl, connectPacket("", "")) != connectBadCredentials {
		t.Error("no credentials accepted with anonymous off")
	}
}

// Mochi logs whole packets on errors; the bridge must forward the record
// without the payload, and turn the quota drop into a counted event.
func TestSlogBridgeRedactsAndCountsQuotaDrops(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(&logrus.JSONFormatter{})
	var drops []string
	sl := newSlogBridge(log, func(client, topic string, _ uint16, cause string) { drops = append(drops, client+" "+topic+" "+cause) })
	pk := packets.Packet{TopicName: "chat/rooms/lobby/bob", Payload: []byte("secret chat text"),
		Connect: packets.ConnectParams{Password: []byte("hunter2")}}
	sl.Warn("error processing packet", "error", packets.ErrProtocolViolation, "client", "c1", "pk", pk)
	sl.With("listener", "tcp").Warn(quotaDropMsg, "client", "c1")
	sl.Debug(failedPublishMsg, "error", packets.ErrQuotaExceeded, "client", "c1", "packet", pk)
	sl.Debug(failedPublishMsg, "error", packets.ErrNotAuthorized, "client", "c2", "packet", pk)
	sl.Debug(failedPublishMsg, "error", packets.ErrPacketTooLarge, "client", "c3", "packet", &pk) // Mochi's write loop
	out := buf.String()
	if strings.Contains(out, "secret") || strings.Contains(out, "hunter2") {
		t.Errorf("payload or password in the log:\n%s", out)
	}
	if !strings.Contains(out, `"pk":"[redacted]"`) || !strings.Contains(out, `"client":"c1"`) || !strings.Contains(out, "error processing packet") {
		t.Errorf("the error record was not forwarded usefully:\n%s", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want only the error record forwarded at info level:\n%s", out)
	}
	want := []string{"c1 chat/rooms/lobby/bob inflight_quota", "c3 chat/rooms/lobby/bob packet_too_large"}
	if !slices.Equal(drops, want) {
		t.Errorf("drops = %q", drops)
	}
	if !sl.Handler().Enabled(context.Background(), slog.LevelDebug) {
		t.Error("the bridge must see Mochi's debug records (drop detection)")
	}
}

// BenchmarkConnectAuth is the CPU cost of authenticating one CONNECT at the
// production bcrypt cost (10), with and without the verified-password cache.
func BenchmarkConnectAuth(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := config.Auth{Users: []config.User{{Name: "alice", PasswordHash: string(hash)}}}
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "bcrypt", true: "cached"}[cached], func(b *testing.B) {
			h := newAuthHook(cfg, false, logrus.NewEntry(log), new(counters))
			cl := &mqtt.Client{ID: "x"}
			for b.Loop() {
				if !cached {
					h.verified = map[string][32]byte{}
				}
				if h.authenticate(cl, connectPacket("alice", "pw")) != connectAccepted {
					b.Fatal("refused")
				}
			}
		})
	}
}

func TestMayRead(t *testing.T) {
	h, _ := testAuth(t, true)
	for _, tc := range []struct {
		user, room string
		want       bool
	}{{"alice", "lobby", true}, {"alice", "dev", false}, {"carol", "dev", true}, {"dave", "lobby", false},
		{"mallory", "lobby", false}, {"", "lobby", true}} {
		if got := h.MayRead(tc.user, tc.room); got != tc.want {
			t.Errorf("MayRead(%q, %q) = %v", tc.user, tc.room, got)
		}
	}
	h.anonymous = false
	if h.MayRead("", "lobby") {
		t.Error("anonymous may read with anonymous off")
	}
}
