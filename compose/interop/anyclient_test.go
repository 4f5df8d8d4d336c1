package interop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session"
	"github.com/distchat/distchat/config"
)

// wait bounds every step: a cluster of three brokers in one loaded process.
const wait = 60 * time.Second

// Any MQTT client on any broker: messages published by mosquitto_pub
// (Debian's mosquitto-clients) on broker 1 of a three-broker cluster reach
// a mosquitto_sub on broker 3 and a chat node on broker 2, each in room
// order (room_seq rising, the publisher's order), with the text as sent,
// and both see the same room_seq for each message.
func TestMosquittoOnAnyBrokerOfACluster(t *testing.T) {
	pubPath, err1 := exec.LookPath("mosquitto_pub")
	subPath, err2 := exec.LookPath("mosquitto_sub")
	if err1 != nil || err2 != nil {
		t.Skip("mosquitto_pub/mosquitto_sub not installed (Debian package mosquitto-clients; .ci/run installs it)")
	}
	if _, err := exec.LookPath("stdbuf"); err != nil {
		t.Skip("stdbuf (coreutils) not installed: mosquitto_sub's SUBACK line would stay in its buffer")
	}
	bs := brokertest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)

	node := startChatNode(ctx, t, bs[1].URL, "bob")
	subbed, subGot, subDone := mosquittoSub(ctx, t, subPath, bs[2].Addr)
	select {
	case <-subbed:
	case err := <-subDone:
		t.Fatalf("mosquitto_sub on broker 3 ended before its SUBACK: %v", err)
	case <-ctx.Done():
		t.Fatal("mosquitto_sub on broker 3: no SUBACK within the bound")
	}

	const count = 5
	var sent []wire.Envelope
	var lines strings.Builder
	for i := range count {
		e := wire.Envelope{V: wire.Version, ID: fmt.Sprintf("mosq-%d", i), Room: "lobby", From: "alice",
			SentNS: time.Now().UnixNano(), Body: fmt.Sprintf("hello number %d from mosquitto_pub", i)}
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
		lines.Write(b)
		lines.WriteByte('\n')
	}
	host, port := splitAddr(t, bs[0].Addr)
	pub := exec.CommandContext(ctx, pubPath, "-h", host, "-p", port, "-i", "alice-pub", "-q", "1",
		"-t", wire.RoomTopic("lobby", "alice"), "-l") // one message per line of stdin, in order, on one connection
	pub.Stdin = strings.NewReader(lines.String())
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub on broker 1: %v: %s", err, out)
	}

	atSub := collect(ctx, t, "mosquitto_sub on broker 3", subGot, count)
	atNode := collect(ctx, t, "chat node on broker 2", node, count)
	if err := <-subDone; err != nil {
		t.Errorf("mosquitto_sub: %v", err)
	}
	checkRoomOrder(t, "mosquitto_sub on broker 3", atSub, sent)
	checkRoomOrder(t, "chat node on broker 2", atNode, sent)
	for i := range atSub {
		if atSub[i].RoomSeq != atNode[i].RoomSeq {
			t.Errorf("%s: room_seq %d at mosquitto_sub, %d at the chat node", sent[i].ID, atSub[i].RoomSeq, atNode[i].RoomSeq)
		}
	}
}

// startChatNode starts a chat node session (the real one, as chatnode runs
// it) as nick in room lobby on the broker at url, waits until it is
// connected and subscribed, and returns its messages as they are shown.
func startChatNode(ctx context.Context, t *testing.T, url, nick string) <-chan wire.Envelope {
	t.Helper()
	cfg := config.DefaultNode()
	cfg.Broker, cfg.Nick, cfg.Rooms, cfg.History, cfg.Run = config.SplitList(url), nick, []string{"lobby"}, 0, t.Name()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	got := make(chan wire.Envelope, 64)
	s, err := session.New(cfg, log.WithField(nodelog.FieldNode, nick), session.Options{OnEvent: func(ev session.Event) {
		if m, ok := ev.(session.Message); ok && m.Conv == "lobby" {
			got <- m.Env
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(cctx)
	})
	if err := s.WaitConnected(ctx); err != nil {
		t.Fatalf("chat node on %s: %v", url, err)
	}
	return got
}

// mosquittoSub runs mosquitto_sub on the broker at addr, subscribed to
// room lobby at QoS 1 until it has five messages. subbed closes when its
// SUBACK came (its -d output says so), got carries the envelopes it
// prints, done its exit.
func mosquittoSub(ctx context.Context, t *testing.T, path, addr string) (subbed <-chan struct{}, got <-chan wire.Envelope, done <-chan error) {
	t.Helper()
	host, port := splitAddr(t, addr)
	// stdbuf: the SUBACK line comes from the debug log (-d), which
	// mosquitto_sub leaves in stdio's buffer when stdout is a pipe.
	cmd := exec.CommandContext(ctx, "stdbuf", "-oL", path, "-h", host, "-p", port, "-i", "watcher-sub", "-q", "1", "-C", "5",
		"-v", "-d", "-t", wire.RoomFilter("lobby"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto_sub: %v", err)
	}
	sub, msgs, exit := make(chan struct{}), make(chan wire.Envelope, 64), make(chan error, 1)
	prefix := strings.TrimSuffix(wire.RoomFilter("lobby"), "+")
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		acked := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case !acked && strings.Contains(line, "received SUBACK"):
				acked = true
				close(sub)
			case strings.HasPrefix(line, prefix):
				_, payload, _ := strings.Cut(line, " ")
				e, err := wire.DecodeEnvelope([]byte(payload), 0)
				if err != nil {
					t.Errorf("mosquitto_sub printed %q: %v", line, err)
					continue
				}
				msgs <- e
			}
		}
		if err := cmd.Wait(); err != nil {
			exit <- fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
			return
		}
		exit <- nil
	}()
	return sub, msgs, exit
}

// collect takes n envelopes from ch, failing the test when ctx ends first.
func collect(ctx context.Context, t *testing.T, who string, ch <-chan wire.Envelope, n int) []wire.Envelope {
	t.Helper()
	var out []wire.Envelope
	for len(out) < n {
		select {
		case e := <-ch:
			out = append(out, e)
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d messages within %s", who, len(out), n, wait)
		}
	}
	return out
}

// checkRoomOrder checks that got holds the messages of sent in their
// order, with their text, and room_seq rising one by one.
func checkRoomOrder(t *testing.T, who string, got, sent []wire.Envelope) {
	t.Helper()
	for i, e := range got {
		if e.ID != sent[i].ID || e.Body != sent[i].Body || e.From != sent[i].From {
			t.Errorf("%s: message %d is %s from %s %q, want %s from %s %q", who, i, e.ID, e.From, e.Body, sent[i].ID, sent[i].From, sent[i].Body)
		}
		if e.RoomSeq == 0 || (i > 0 && e.RoomSeq != got[i-1].RoomSeq+1) {
			t.Errorf("%s: message %d (%s) has room_seq %d after %d: want the room's numbers, one after another", who, i, e.ID, e.RoomSeq, got[max(i-1, 0)].RoomSeq)
		}
	}
}

func splitAddr(t *testing.T, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}
