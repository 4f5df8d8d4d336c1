package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/analysis/percentile"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/mqttconn"
)

// pahoNodeArg, as the first argument, makes benchnodes one bare paho node
// of a -client paho run (benchnodes starts itself N times with it).
const pahoNodeArg = "-paho-node"

// pahoNode is the floor under a chat node: paho on the node's connection
// (mqttconn, PUBACKs held as a node holds them), the same room, rate and
// envelope size, and nothing else: no log, no ordering, no catch-up, no
// state. Its CPU per delivery is what paho and the Go runtime cost on
// this machine before any chat work.
type pahoNode struct {
	broker, nick string
	rate         float64
	size, peers  int
	duration     time.Duration
	startAt      time.Time
	sent         int        // only the sending goroutine, run's caller, counts it
	mu           sync.Mutex // guards latencies and received (paho's router calls the handler)
	latencies    []time.Duration
	received     int
}

func runPahoNode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var n pahoNode
	fs := flag.NewFlagSet("benchnodes "+pahoNodeArg, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&n.broker, "broker", "", "broker URL")
	fs.StringVar(&n.nick, "nick", "", "client id, user and sender name")
	fs.Float64Var(&n.rate, "rate", 100, "messages per second")
	fs.DurationVar(&n.duration, "duration", 10*time.Second, "how long to send")
	fs.IntVar(&n.size, "size", 256, "message size in bytes")
	fs.IntVar(&n.peers, "peers", 1, "nodes in the room, this one included")
	start := fs.Int64("start-at", 0, "when to start sending (Unix nanoseconds)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	n.startAt = time.Unix(0, *start)
	if err := n.run(ctx); err != nil {
		fmt.Fprintf(stderr, "benchnodes %s: %v\n", pahoNodeArg, err)
		return 1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	slices.Sort(n.latencies)
	fmt.Fprintf(stdout, "bench run=paho node=%s sent=%d received=%d expected=%d duplicates=0 p50=%s p99=%s\n",
		n.nick, n.sent, n.received, n.expected(), percentile.Of(n.latencies, 500), percentile.Of(n.latencies, 990))
	return 0
}

// expected is how many deliveries a node gets: every node's messages, its
// own included.
func (n *pahoNode) expected() int { return int(n.rate*n.duration.Seconds()) * n.peers }

func (n *pahoNode) run(ctx context.Context) error {
	o := mqtt.NewClientOptions().AddBroker(n.broker).SetClientID(n.nick).SetUsername(n.nick).
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true).
		SetCustomOpenConnectionFn(mqttconn.Open)
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("connect to %s: %v", n.broker, t.Error())
	}
	defer c.Disconnect(250)
	all := make(chan struct{})
	want := n.expected()
	if t := c.Subscribe(wire.RoomFilter("lobby"), 1, func(_ mqtt.Client, m mqtt.Message) {
		n.receive(m.Payload(), want, all)
	}); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("subscribe: %v", t.Error())
	}
	if err := n.send(ctx, c); err != nil {
		return err
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second): // at most, as a chat node's -linger
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// receive counts a delivery and its latency from the envelope's send time.
func (n *pahoNode) receive(payload []byte, want int, all chan struct{}) {
	e, err := wire.DecodeEnvelope(payload, len(payload))
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.received++
	if err == nil {
		n.latencies = append(n.latencies, now.Sub(time.Unix(0, e.SentNS)))
	}
	if n.received == want {
		close(all)
	}
}

// send publishes at the rate from startAt for the duration, QoS 1, without
// waiting for PUBACKs (paho's own window).
func (n *pahoNode) send(ctx context.Context, c mqtt.Client) error {
	total := int(n.rate * n.duration.Seconds())
	interval := time.Duration(float64(time.Second) / n.rate)
	topic := wire.RoomTopic("lobby", n.nick)
	boot := time.Now().UnixNano()
	var tokens []mqtt.Token
	for i := range total {
		at := n.startAt.Add(time.Duration(i) * interval)
		select {
		case <-time.After(time.Until(at)):
		case <-ctx.Done():
			return ctx.Err()
		}
		e := wire.Envelope{V: wire.Version, ID: n.nick + "-" + strconv.Itoa(i), Room: "lobby", From: n.nick,
			Boot: boot, Seq: uint64(i + 1), SentNS: at.UnixNano()}
		b, err := e.EncodePadded(n.size)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		tokens = append(tokens, c.Publish(topic, 1, false, b))
		n.sent++
	}
	var errs []error
	for _, t := range tokens {
		if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			errs = append(errs, fmt.Errorf("publish: %v", t.Error()))
		}
	}
	return errors.Join(errs...)
}
