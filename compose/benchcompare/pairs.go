package benchcompare

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/wire"
)

// PairsConfig is the shape of a closed-loop pair load.
type PairsConfig struct {
	URL   string // tcp://host:port
	Pairs int    // publisher/subscriber pairs
	Size  int    // encoded envelope bytes
	// Warmup runs first and is not measured; Duration is measured.
	Warmup, Duration time.Duration
	// Timeout is how long a publisher waits for its subscriber before it
	// counts the message lost and sends the next.
	Timeout time.Duration
}

// PairsResult is what a pair load measured.
type PairsResult struct {
	// Latencies are publish call → subscriber receipt, measured window only.
	Latencies           []time.Duration
	Published, Received int64 // in the measured window
	// Deliveries counts every receipt, warm-up included (the CPU figures
	// divide by it, as the CPU covers the whole load).
	Deliveries int64
	Elapsed    time.Duration // the measured window's length
}

type receipt struct {
	seq uint64
	at  time.Time
}

// pair is one publisher and its subscriber on their own room topic.
type pair struct {
	user     string // p<n>, in room pair<n>
	room     string
	topic    string
	pub, sub mqtt.Client
	got      chan receipt
}

// RunPairs runs the closed loop: each publisher sends the next message once
// its subscriber has received the previous one (or Timeout passed). The
// clients share this process, so one clock stamps send and receive.
func RunPairs(ctx context.Context, cfg PairsConfig) (PairsResult, error) {
	if cfg.Pairs < 1 || cfg.Duration <= 0 || cfg.Timeout <= 0 {
		return PairsResult{}, fmt.Errorf("pair load: needs pairs ≥ 1, a duration and a timeout (got %d, %s, %s)", cfg.Pairs, cfg.Duration, cfg.Timeout)
	}
	pairs := make([]*pair, 0, cfg.Pairs)
	defer func() {
		for _, p := range pairs {
			p.close()
		}
	}()
	for i := range cfg.Pairs {
		p, err := connectPair(cfg.URL, i)
		if err != nil {
			return PairsResult{}, err
		}
		pairs = append(pairs, p)
	}
	start := time.Now()
	from, end := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	results := make([]PairsResult, len(pairs))
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Go(func() { results[i], errs[i] = p.loop(ctx, cfg, from, end) })
	}
	wg.Wait()
	var res PairsResult
	for _, r := range results {
		res.Latencies = append(res.Latencies, r.Latencies...)
		res.Published += r.Published
		res.Received += r.Received
		res.Deliveries += r.Deliveries
	}
	res.Elapsed = min(time.Since(from), cfg.Duration)
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// connectPair connects pair n's subscriber (subscribed) and publisher.
func connectPair(url string, n int) (*pair, error) {
	user, room := "p"+strconv.Itoa(n), "pair"+strconv.Itoa(n)
	p := &pair{user: user, room: room, topic: wire.RoomTopic(room, user), got: make(chan receipt, 64)}
	var err error
	if p.sub, err = connectClient(url, "bench-sub-"+user, user); err != nil {
		return nil, err
	}
	handler := func(_ mqtt.Client, m mqtt.Message) {
		at := time.Now()
		env, err := wire.DecodeEnvelope(m.Payload(), 0)
		if err != nil {
			return // not ours (the load sends only envelopes)
		}
		select {
		case p.got <- receipt{seq: env.Seq, at: at}:
		default: // the publisher stopped listening: the load is over
		}
	}
	if err := waitToken(p.sub.Subscribe(p.topic, 1, handler), "subscribe "+p.topic); err != nil {
		p.close()
		return nil, err
	}
	if p.pub, err = connectClient(url, "bench-pub-"+user, user); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// connectClient connects one paho client (MQTT 3.1.1, clean session, no
// reconnect: a broken connection is a failed load, not a retry).
func connectClient(url, id, user string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectRetry(false).SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second).
		SetWriteTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if err := waitToken(c.Connect(), "connect "+id+" to "+url); err != nil {
		return nil, err
	}
	return c, nil
}

func waitToken(t mqtt.Token, what string) error {
	if !t.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("%s: no answer in 10s", what)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (p *pair) close() {
	for _, c := range []mqtt.Client{p.pub, p.sub} {
		if c != nil && c.IsConnected() {
			c.Disconnect(100)
		}
	}
}

// loop publishes and waits for each message until end; messages published
// from `from` on are measured.
func (p *pair) loop(ctx context.Context, cfg PairsConfig, from, end time.Time) (PairsResult, error) {
	var res PairsResult
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		payload, err := pairPayload(p.user, p.room, seq, t0, cfg.Size)
		if err != nil {
			return res, err
		}
		tok := p.pub.Publish(p.topic, 1, false, payload)
		measured := !t0.Before(from)
		if measured {
			res.Published++
		}
		timer.Reset(cfg.Timeout)
		at, ok := p.await(ctx, seq, timer.C)
		if ok {
			res.Deliveries++
			if measured {
				res.Received++
				res.Latencies = append(res.Latencies, at.Sub(t0))
			}
		}
		if err := waitToken(tok, "publish on "+p.topic); err != nil {
			return res, err
		}
	}
	return res, nil
}

// await waits for the receipt of seq (older receipts are skipped) until
// timeout fires or ctx ends.
func (p *pair) await(ctx context.Context, seq uint64, timeout <-chan time.Time) (time.Time, bool) {
	for {
		select {
		case r := <-p.got:
			if r.seq == seq {
				return r.at, true
			}
		case <-timeout:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// pairPayload is a chat envelope padded to size bytes, as chatnode bench pads.
func pairPayload(user, room string, seq uint64, at time.Time, size int) ([]byte, error) {
	env := wire.Envelope{V: wire.Version, ID: user + "-" + strconv.FormatUint(seq, 36), Room: room, From: user,
		Seq: seq, SentNS: at.UnixNano(), Body: "pair load"}
	return env.EncodePadded(size)
}
