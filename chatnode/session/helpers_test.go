package session

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/internal/syncbuf"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/config"
)

// lockedBuffer is a log sink safe for the session's goroutines.
type lockedBuffer = syncbuf.Buffer

// collector records what a test node delivers.
type collector struct {
	mu     sync.Mutex
	msgs   []Message
	infos  []string
	pres   []PresenceChange
	status []Status
	notify chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) onEvent(e Event) {
	c.mu.Lock()
	switch e := e.(type) {
	case Message:
		c.msgs = append(c.msgs, e)
	case Info:
		c.infos = append(c.infos, e.Text)
	case PresenceChange:
		c.pres = append(c.pres, e)
	case Status:
		c.status = append(c.status, e)
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called under the lock) holds, or fails the test.
func (c *collector) waitFor(t testing.TB, d time.Duration, what string, cond func(*collector) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond(c)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			c.mu.Lock()
			n := len(c.msgs)
			c.mu.Unlock()
			t.Fatalf("timed out after %s waiting for %s (%d messages so far)", d, what, n)
		}
	}
}

func (c *collector) messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// testNode is a session plus what it delivered.
type testNode struct {
	*Session
	got *collector
	cfg config.Node
}

// nodeConfig is a node configuration for tests: fast reconnects, short gap wait.
func nodeConfig(t *testing.T, url, nick string, rooms ...string) config.Node {
	t.Helper()
	return nodeConfigTB(t, url, nick, rooms...)
}

func nodeConfigTB(t testing.TB, url, nick string, rooms ...string) config.Node {
	t.Helper()
	cfg := config.DefaultNode()
	cfg.Broker, cfg.Nick, cfg.Rooms = config.SplitList(url), nick, rooms
	cfg.MaxReconnectInterval = 500 * time.Millisecond
	cfg.ConnectTimeout = 5 * time.Second
	cfg.GapWait = 500 * time.Millisecond
	cfg.History = 0
	cfg.Run = t.Name()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testLogger is a node's logger in a test. Its lines are kept, and when the
// test fails the ones that tell the story (everything but single deliveries)
// are written to the test log, so a failure in CI can be read afterwards.
// DISTCHAT_TEST_LOG=1 sends every line to stderr as it happens.
func testLogger(t testing.TB, nick string) *logrus.Entry {
	l := logrus.New()
	l.SetFormatter(&logrus.JSONFormatter{})
	if _, ok := t.(*testing.B); ok { // benchmarks: nothing kept, nothing slowed down
		l.SetOutput(io.Discard)
		return l.WithField(nodelog.FieldNode, nick)
	}
	kept := &lockedBuffer{}
	l.SetOutput(kept)
	if os.Getenv("DISTCHAT_TEST_LOG") != "" {
		l.SetOutput(io.MultiWriter(kept, os.Stderr))
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var n, skipped int
		for _, line := range strings.Split(kept.String(), "\n") {
			if line == "" {
				continue
			}
			if strings.Contains(line, `"event":"received"`) || strings.Contains(line, `"event":"sent"`) || n >= 400 {
				skipped++
				continue
			}
			n++
			t.Logf("%s log: %s", nick, line)
		}
		t.Logf("%s log: %d more lines (deliveries) not shown (deliveries and acknowledged sends)", nick, skipped)
	})
	l.SetFormatter(&logrus.JSONFormatter{})
	return l.WithField(nodelog.FieldNode, nick)
}

// startNode starts a session with cfg, waits until it is connected and
// closes it at the end of the test.
func startNode(t testing.TB, cfg config.Node) *testNode {
	t.Helper()
	got := newCollector()
	s, err := New(cfg, testLogger(t, cfg.Nick), Options{OnEvent: got.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Start(context.Background())
	closed := false
	n := &testNode{Session: s, got: got, cfg: cfg}
	t.Cleanup(func() {
		if !closed {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s.Close(cctx)
		}
	})
	if err := s.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *testNode) close(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.Close(ctx)
}

// waitOnline waits until every node sees all the others online in room.
func waitOnline(t *testing.T, room string, nodes ...*testNode) {
	t.Helper()
	for _, n := range nodes {
		n.got.waitFor(t, 10*time.Second, "peers online in "+room, func(*collector) bool {
			return len(n.Who(room)) >= countIn(room, nodes)
		})
	}
}

func countIn(room string, nodes []*testNode) int {
	k := 0
	for _, n := range nodes {
		for _, r := range n.cfg.Rooms {
			if r == room {
				k++
			}
		}
	}
	return k
}

// send sends count messages from n to room and waits for every PUBACK.
func send(t *testing.T, n *testNode, room string, count int) {
	t.Helper()
	var all []*Sent
	for i := 0; i < count; i++ {
		s, err := n.Send(context.Background(), Outgoing{Room: room, Body: "m"})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	waitAcked(t, all, 30*time.Second)
}

// waitAcked waits for every message's PUBACK, each within d, and fails the
// test on a send error.
func waitAcked(t testing.TB, all []*Sent, d time.Duration) {
	t.Helper()
	for _, s := range all {
		select {
		case <-s.Done:
			if s.Err != nil {
				t.Fatalf("send: %v", s.Err)
			}
		case <-time.After(d):
			t.Fatalf("no PUBACK within %s", d)
		}
	}
}

// checkComplete asserts n delivered exactly seqs 1..want[from/room] from each
// sender in each room, no duplicates, each sender's messages in seq order.
func checkComplete(t *testing.T, n *testNode, want map[[2]string]int) {
	t.Helper()
	got := map[[2]string][]uint64{}
	ids := map[string]bool{}
	for _, m := range n.got.messages() {
		if ids[m.Env.ID] {
			t.Errorf("%s: duplicate %s shown", n.cfg.Nick, m.Env.ID)
		}
		ids[m.Env.ID] = true
		k := [2]string{m.Env.From, m.Conv}
		got[k] = append(got[k], m.Env.Seq)
	}
	for k, cnt := range want {
		seqs := got[k]
		if len(seqs) != cnt {
			t.Errorf("%s: from %s in %s: %d messages, want %d", n.cfg.Nick, k[0], k[1], len(seqs), cnt)
			continue
		}
		for i, s := range sortedCopy(seqs) {
			if s != uint64(i+1) {
				t.Errorf("%s: from %s in %s: seq %d at position %d", n.cfg.Nick, k[0], k[1], s, i)
				break
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected messages from %s in %s", n.cfg.Nick, k[0], k[1])
		}
	}
}

func sortedCopy(v []uint64) []uint64 {
	out := append([]uint64(nil), v...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// expected counts messages delivered to a node in a room.
func total(want map[[2]string]int) int {
	n := 0
	for _, v := range want {
		n += v
	}
	return n
}

// broker is the URL of the broker the session is connected to, "" while
// it is not connected.
func (s *Session) broker() string { return locked(s, func() string { return s.link.current }) }

// presenceOf returns the last presence the session saw of user.
func (s *Session) presenceOf(user string) (wire.Presence, bool) {
	p, ok := s.pres.book.Load(user)
	if !ok {
		return wire.Presence{}, false
	}
	return p.(wire.Presence), true
}
