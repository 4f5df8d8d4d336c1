package cluster_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/wire"
)

const wait = 20 * time.Second

// member is an MQTT client of one broker that records the chat messages it
// receives and answers catch-up requests for its user.
type member struct {
	t    testing.TB
	user string
	c    paho.Client

	mu        sync.Mutex // guards got and inbox
	got       []wire.Envelope
	inbox     chan wire.SyncReply
	more      chan struct{} // signalled (non-blocking) on every message
	inboxOnce sync.Once
}

// join connects user to the broker at url (clean session, no reconnect).
func join(t testing.TB, url, user string) *member {
	t.Helper()
	m, err := tryJoin(t, url, user)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tryJoin is join that returns a failed connect.
func tryJoin(t testing.TB, url, user string) (*member, error) {
	m := &member{t: t, user: user, inbox: make(chan wire.SyncReply, 16), more: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("%s-%d", user, time.Now().UnixNano())).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true).SetConnectTimeout(wait)
	m.c = paho.NewClient(opts)
	if tok := m.c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s to %s: %v", user, url, tok.Error())
	}
	t.Cleanup(func() { m.c.Disconnect(0) })
	return m, nil
}

// sendAll publishes n messages from user in room, each until acknowledged:
// on a missing PUBACK it reconnects, to the next URL of urls when there is
// one (a node failing over), and resends the same message. It returns the
// ids acknowledged, in order, and calls after(k) after the k-th ack.
func sendAll(t testing.TB, urls []string, user, room string, n int, after func(k int)) []string {
	var acked []string
	var m *member
	cur := 0
	for k := 0; k < n; {
		id := fmt.Sprintf("%s-%d", user, k)
		if m == nil {
			var err error
			if m, err = tryJoin(t, urls[cur], user); err != nil {
				cur = min(cur+1, len(urls)-1)
				continue
			}
		}
		if !m.say(room, id, 8*time.Second) {
			m.c.Disconnect(0)
			m = nil
			cur = min(cur+1, len(urls)-1)
			continue
		}
		acked = append(acked, id)
		k++
		if after != nil {
			after(k)
		}
	}
	return acked
}

// follow subscribes to room and records every message in arrival order.
func (m *member) follow(room string) {
	m.t.Helper()
	tok := m.c.Subscribe(wire.RoomFilter(room), 1, func(_ paho.Client, msg paho.Message) {
		e, err := wire.DecodeEnvelope(msg.Payload(), 0)
		if err != nil {
			m.t.Errorf("%s: undecodable message on %s: %v", m.user, msg.Topic(), err)
			return
		}
		m.mu.Lock()
		m.got = append(m.got, e)
		m.mu.Unlock()
		select {
		case m.more <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		m.t.Fatalf("subscribe %s: %v", room, tok.Error())
	}
}

// waitFor waits until the member has received n messages and returns them.
func (m *member) waitFor(n int) []wire.Envelope {
	m.t.Helper()
	deadline := time.After(wait)
	for {
		m.mu.Lock()
		got := append([]wire.Envelope(nil), m.got...)
		m.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-m.more:
		case <-deadline:
			m.t.Fatalf("%s: %d of %d messages within %s", m.user, len(got), n, wait)
		}
	}
}

// say publishes a chat message with id in room and waits for its PUBACK;
// it reports whether the broker acknowledged it within timeout.
func (m *member) say(room, id string, timeout time.Duration) bool {
	m.t.Helper()
	b, err := wire.Envelope{V: wire.Version, ID: id, Room: room, From: m.user, SentNS: time.Now().UnixNano(), Body: "text " + id}.Encode()
	if err != nil {
		m.t.Fatal(err)
	}
	tok := m.c.Publish(wire.RoomTopic(room, m.user), 1, false, b)
	return tok.WaitTimeout(timeout) && tok.Error() == nil
}

// list asks the member's broker which conversations its user has (a List
// request) and returns the first page.
func (m *member) list() []wire.ConvInfo {
	m.t.Helper()
	m.subscribeInbox()
	req, err := json.Marshal(wire.SyncRequest{V: wire.Version, ReqID: "list", List: true})
	if err != nil {
		m.t.Fatal(err)
	}
	if tok := m.c.Publish(wire.SyncTopic(m.user), 1, false, req); !tok.WaitTimeout(wait) || tok.Error() != nil {
		m.t.Fatalf("list request: %v", tok.Error())
	}
	select {
	case r := <-m.inbox:
		return r.Convs
	case <-time.After(wait):
		m.t.Fatalf("%s: no list reply within %s", m.user, wait)
		return nil
	}
}

// dm sends a direct message with id to user to and waits for its PUBACK.
func (m *member) dm(to, id string) {
	m.t.Helper()
	b, err := wire.Envelope{V: wire.Version, ID: id, To: to, From: m.user, SentNS: time.Now().UnixNano(), Body: "dm " + id}.Encode()
	if err != nil {
		m.t.Fatal(err)
	}
	if tok := m.c.Publish(wire.DMTopic(to, m.user), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		m.t.Fatalf("dm: %v", tok.Error())
	}
}

// subscribeInbox subscribes once to the user's catch-up replies.
func (m *member) subscribeInbox() {
	m.t.Helper()
	m.inboxOnce.Do(func() {
		tok := m.c.Subscribe(wire.InboxTopic(m.user), 0, func(_ paho.Client, msg paho.Message) {
			var r wire.SyncReply
			if err := json.Unmarshal(msg.Payload(), &r); err != nil {
				m.t.Errorf("%s: undecodable sync reply: %v", m.user, err)
				return
			}
			m.inbox <- r
		})
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			m.t.Fatalf("subscribe inbox: %v", tok.Error())
		}
	})
}

// history reads conv's whole log from the member's broker by catch-up
// requests, page by page.
func (m *member) history(conv string) []wire.Envelope {
	m.t.Helper()
	m.subscribeInbox()
	var out []wire.Envelope
	for page := 0; ; page++ {
		after := uint64(0)
		if len(out) > 0 {
			after = out[len(out)-1].RoomSeq
		}
		req, err := json.Marshal(wire.SyncRequest{V: wire.Version, ReqID: fmt.Sprintf("h%d", page), Conv: conv, AfterSeq: after})
		if err != nil {
			m.t.Fatal(err)
		}
		if tok := m.c.Publish(wire.SyncTopic(m.user), 1, false, req); !tok.WaitTimeout(wait) || tok.Error() != nil {
			m.t.Fatalf("sync request: %v", tok.Error())
		}
		select {
		case r := <-m.inbox:
			if r.Error != "" {
				m.t.Fatalf("sync refused: %s", r.Error)
			}
			out = append(out, r.Messages...)
			if !r.More {
				return out
			}
		case <-time.After(wait):
			m.t.Fatalf("%s: no sync reply within %s", m.user, wait)
		}
	}
}

// historyOf reads conv's log until it holds at least n messages: a
// broker's view follows the replicated log and may be a moment behind.
func (m *member) historyOf(conv string, n int) []wire.Envelope {
	m.t.Helper()
	return m.historyUntil(conv, func(h []wire.Envelope) bool { return len(h) >= n })
}

// historyHolding is conv's history once it holds a message of every id in
// ids, or at the deadline.
func (m *member) historyHolding(conv string, ids ...string) []wire.Envelope {
	m.t.Helper()
	return m.historyUntil(conv, func(h []wire.Envelope) bool {
		held := map[string]bool{}
		for _, e := range h {
			held[e.ID] = true
		}
		for _, id := range ids {
			if !held[id] {
				return false
			}
		}
		return true
	})
}

// historyUntil is conv's history once done accepts it, or at the deadline.
func (m *member) historyUntil(conv string, done func([]wire.Envelope) bool) []wire.Envelope {
	m.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		h := m.history(conv)
		if done(h) || time.Now().After(deadline) {
			return h
		}
		select {
		case <-m.more:
		case <-time.After(50 * time.Millisecond): // a poll interval, not a synchronisation
		}
	}
}

// contiguous fails unless msgs carry room_seq 1..len(msgs) in order and
// each id once.
func contiguous(t testing.TB, who string, msgs []wire.Envelope) {
	t.Helper()
	ids := map[string]uint64{}
	for i, e := range msgs {
		if e.RoomSeq != uint64(i+1) {
			t.Fatalf("%s: message %d has room_seq %d, want %d", who, i, e.RoomSeq, i+1)
		}
		if at, dup := ids[e.From+"/"+e.ID]; dup {
			t.Fatalf("%s: %s/%s stored twice, as #%d and #%d", who, e.From, e.ID, at, e.RoomSeq)
		}
		ids[e.From+"/"+e.ID] = e.RoomSeq
	}
}

// sameOrder fails unless a and b are the same messages in the same order.
func sameOrder(t testing.TB, what string, a, b []wire.Envelope) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d messages against %d", what, len(a), len(b))
	}
	for i := range a {
		if a[i].RoomSeq != b[i].RoomSeq || a[i].ID != b[i].ID || a[i].From != b[i].From {
			t.Fatalf("%s: message %d is %s/%s #%d against %s/%s #%d", what, i, a[i].From, a[i].ID, a[i].RoomSeq, b[i].From, b[i].ID, b[i].RoomSeq)
		}
	}
}
