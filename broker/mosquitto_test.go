package broker_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// Debian's mosquitto_pub and mosquitto_sub work against the broker: a user
// with a password, and an anonymous operator watching chat/#.
func TestMosquittoClients(t *testing.T) {
	pubPath, err1 := exec.LookPath("mosquitto_pub")
	subPath, err2 := exec.LookPath("mosquitto_sub")
	if err1 != nil || err2 != nil {
		t.Skip("mosquitto_pub/mosquitto_sub not installed (Debian package mosquitto-clients; .ci/run installs it)")
	}
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	cfg.Auth.Anonymous = true
	b, lines := loggedBroker(t, cfg)
	host, port, err := net.SplitHostPort(b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	type result struct {
		out []byte
		err error
	}
	sub := func(id string, args ...string) <-chan result {
		cmd := exec.CommandContext(ctx, subPath, append([]string{"-h", host, "-p", port, "-i", id, "-q", "1", "-C", "1", "-v"}, args...)...)
		ch := make(chan result, 1)
		go func() {
			out, err := cmd.CombinedOutput()
			ch <- result{out, err}
		}()
		lines.Wait(t, wait, func(m map[string]any) bool { return m["event"] == "subscribed" && m["client_id"] == id })
		return ch
	}
	aliceSub := sub("alice-sub", "-u", "alice", "-P", "alice-pw", "-t", wire.RoomFilter("lobby"))
	operator := sub("operator", "-t", wire.AllChatFilter)

	payload := envelope(t, "lobby", "bob", "from-mosquitto")
	out, err := exec.CommandContext(ctx, pubPath, "-h", host, "-p", port, "-i", "bob-pub", "-u", "bob", "-P", "bob-pw",
		"-q", "1", "-t", wire.RoomTopic("lobby", "bob"), "-m", string(payload)).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	for name, ch := range map[string]<-chan result{"alice": aliceSub, "operator": operator} {
		r := <-ch
		if r.err != nil {
			t.Fatalf("%s mosquitto_sub: %v: %s", name, r.err, r.out)
		}
		if !strings.HasPrefix(string(r.out), wire.RoomTopic("lobby", "bob")+" ") || !strings.Contains(string(r.out), `"id":"from-mosquitto"`) {
			t.Errorf("%s mosquitto_sub printed %q", name, r.out)
		}
	}
	// A wrong password is refused with mosquitto_pub too.
	out, err = exec.CommandContext(ctx, pubPath, "-h", host, "-p", port, "-u", "bob", "-P", "wrong",
		"-q", "1", "-t", wire.RoomTopic("lobby", "bob"), "-m", string(payload)).CombinedOutput()
	if err == nil {
		t.Errorf("mosquitto_pub with a wrong password succeeded: %s", out)
	}
}
