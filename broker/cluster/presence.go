package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
)

// PresenceBucket is the KV bucket of presence: a key per user and broker.
const PresenceBucket = "PRESENCE"

// PresenceOptions configure shared presence. Zero values take the defaults.
type PresenceOptions struct {
	Replicas int
	// Heartbeat is how often a broker rewrites its entries; TTL how long
	// another trusts one not rewritten, so a dead broker's devices go
	// offline everywhere within it. Defaults 1 s and 4 s.
	Heartbeat, TTL time.Duration
	// Now is the clock entries age on; nil is time.Now.
	Now func() time.Time
}

// Presence shares each broker's presence of its users through JetStream
// KV: a user is online while any device on any broker is. A broker writes
// its own entries on every change and heartbeat, follows the others', and
// calls OnChange when another's entry for a user changes or ages out.
type Presence struct {
	node string
	kv   jetstream.KeyValue
	opts PresenceOptions
	log  *logrus.Entry
	// OnChange is set once, before Run.
	OnChange func(user string)

	mu     sync.Mutex // guards mine, others and dirty; taken after no other lock, never held across a KV call
	mine   map[string]wire.Presence
	others map[string]map[string]seen // user → node → entry
	dirty  map[string]bool            // users whose own entry awaits a write
	wake   chan struct{}
}

// seen is another broker's entry and when this broker last saw it written.
type seen struct {
	p  wire.Presence
	at time.Time
}

// OpenPresence creates (or joins) the presence bucket.
func OpenPresence(ctx context.Context, n *Node, opts PresenceOptions, log *logrus.Entry) (*Presence, error) {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	if opts.TTL <= 0 {
		opts.TTL = 4 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg := jetstream.KeyValueConfig{Bucket: PresenceBucket, History: 1, TTL: 2 * opts.TTL, Replicas: opts.Replicas, Storage: jetstream.MemoryStorage}
	var kv jetstream.KeyValue
	err := retry(ctx, "presence bucket "+PresenceBucket, func(ctx context.Context) error {
		var err error
		kv, err = n.js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Presence{node: n.name, kv: kv, opts: opts, log: log, mine: map[string]wire.Presence{},
		others: map[string]map[string]seen{}, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}, nil
}

// presenceKey is user's key for node: base64url of the user (KV keys take
// few characters), then the node.
func presenceKey(user, node string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + node
}

func parsePresenceKey(key string) (user, node string, err error) {
	enc, node, ok := strings.Cut(key, ".")
	if !ok || node == "" {
		return "", "", fmt.Errorf("presence key %q", key)
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", "", fmt.Errorf("presence key %q: %w", key, err)
	}
	return string(b), node, nil
}

// Set records this broker's presence of user (nil: no device here), written
// in the background.
func (p *Presence) Set(user string, pr *wire.Presence) {
	p.mu.Lock()
	if pr == nil {
		delete(p.mine, user)
	} else {
		p.mine[user] = *pr
	}
	p.dirty[user] = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Others is user's presence on the other brokers within TTL, by node.
func (p *Presence) Others(user string) []wire.Presence {
	now := p.opts.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []wire.Presence
	for _, node := range slices.Sorted(maps.Keys(p.others[user])) {
		if s := p.others[user][node]; now.Sub(s.at) < p.opts.TTL {
			out = append(out, s.p)
		}
	}
	return out
}

// Run writes this broker's entries and follows the others' until ctx ends.
func (p *Presence) Run(ctx context.Context) error {
	w, err := p.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch presence: %w", err)
	}
	defer func() {
		stopped := stopWithin(consumerStopGrace, func() {
			if err := w.Stop(); err != nil && !errors.Is(err, context.Canceled) {
				p.log.WithError(err).Debug("stop presence watch")
			}
		})
		if !stopped {
			p.log.Debug("presence watch did not stop in time; it ends with the cluster node")
		}
	}()
	beat := time.NewTicker(p.opts.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("presence watch ended")
			}
			if e != nil {
				p.take(e)
			}
		case <-p.wake:
			p.write(ctx, false)
		case <-beat.C:
			p.write(ctx, true)
			p.sweep()
		}
	}
}

// take applies another broker's entry.
func (p *Presence) take(e jetstream.KeyValueEntry) {
	user, node, err := parsePresenceKey(e.Key())
	if err != nil || node == p.node {
		return
	}
	p.mu.Lock()
	if e.Operation() == jetstream.KeyValuePut {
		var pr wire.Presence
		if json.Unmarshal(e.Value(), &pr) != nil {
			p.mu.Unlock()
			return
		}
		if p.others[user] == nil {
			p.others[user] = map[string]seen{}
		}
		old, had := p.others[user][node]
		p.others[user][node] = seen{pr, p.opts.Now()}
		p.mu.Unlock()
		if had && old.p.Devices == pr.Devices && strings.Join(old.p.Rooms, ",") == strings.Join(pr.Rooms, ",") {
			return // a heartbeat
		}
	} else {
		delete(p.others[user], node)
		p.mu.Unlock()
	}
	p.changed(user)
}

// sweep forgets entries older than the TTL: their broker stopped writing.
func (p *Presence) sweep() {
	now := p.opts.Now()
	var gone []string
	p.mu.Lock()
	for user, nodes := range p.others {
		for node, s := range nodes {
			if now.Sub(s.at) >= p.opts.TTL {
				delete(nodes, node)
				gone = append(gone, user)
			}
		}
		if len(nodes) == 0 {
			delete(p.others, user)
		}
	}
	p.mu.Unlock()
	for _, user := range gone {
		p.changed(user)
	}
}

func (p *Presence) changed(user string) {
	if p.OnChange != nil {
		p.OnChange(user)
	}
}

// write puts this broker's changed entries (all on a heartbeat) and
// deletes those of users with no device here any more.
func (p *Presence) write(ctx context.Context, all bool) {
	p.mu.Lock()
	puts := map[string][]byte{}
	var dels []string
	for user := range p.dirty {
		if _, ok := p.mine[user]; !ok {
			dels = append(dels, user)
		}
	}
	for user, pr := range p.mine {
		if all || p.dirty[user] {
			if b, err := json.Marshal(pr); err == nil {
				puts[user] = b
			}
		}
	}
	clear(p.dirty)
	p.mu.Unlock()
	for user, b := range puts {
		if _, err := p.kv.Put(ctx, presenceKey(user, p.node), b); err != nil {
			p.log.WithError(err).WithField("user", user).Debug("presence: write failed; the next heartbeat writes again")
		}
	}
	for _, user := range dels {
		if err := p.kv.Delete(ctx, presenceKey(user, p.node)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			p.log.WithError(err).WithField("user", user).Debug("presence: delete failed; the entry ages out")
		}
	}
}
