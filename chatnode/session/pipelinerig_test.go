package session

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// The pipeline rig: a session whose pipeline the tests drive directly and
// synchronously, a fake client that records sync requests, and the room
// log played by hand.

type doneToken struct{ mqtt.Token }

func (doneToken) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
func (doneToken) Error() error                   { return nil }
func (doneToken) Wait() bool                     { return true }
func (doneToken) WaitTimeout(time.Duration) bool { return true }

type fakeClient struct {
	mqtt.Client
	reqs  []wire.SyncRequest // for one conversation each
	lists []wire.SyncRequest // List requests
}

func (f *fakeClient) Publish(topic string, _ byte, _ bool, payload any) mqtt.Token {
	if strings.HasPrefix(topic, "chat/sync/") {
		var r wire.SyncRequest
		if err := json.Unmarshal(payload.([]byte), &r); err != nil {
			panic(err)
		}
		if r.List {
			f.lists = append(f.lists, r)
		} else {
			f.reqs = append(f.reqs, r)
		}
	}
	return doneToken{}
}

// last is the last sync request for a conversation.
func (f *fakeClient) last(t *testing.T) wire.SyncRequest {
	t.Helper()
	if len(f.reqs) == 0 {
		t.Fatal("no sync request sent")
	}
	return f.reqs[len(f.reqs)-1]
}

// lastList is the last List request.
func (f *fakeClient) lastList(t *testing.T) wire.SyncRequest {
	t.Helper()
	if len(f.lists) == 0 {
		t.Fatal("no list request sent")
	}
	return f.lists[len(f.lists)-1]
}

type pipeRig struct {
	s     *Session
	p     *pipeline
	fc    *fakeClient
	got   *collector
	clock *fakeClock
}

func newRig(t *testing.T, cfg config.Node) *pipeRig {
	t.Helper()
	got := newCollector()
	clk := newFakeClock()
	s, err := New(cfg, testLogger(t, cfg.Nick), Options{OnEvent: got.onEvent, clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeClient{}
	s.client = fc
	s.link.firstUpOnce.Do(func() { close(s.link.firstUp) }) // as if connected: requests go out
	return &pipeRig{s: s, p: s.p, fc: fc, got: got, clock: clk}
}

func rigConfig(t *testing.T, rooms ...string) config.Node {
	cfg := nodeConfig(t, "tcp://127.0.0.1:1", "me", rooms...)
	cfg.GapWait = time.Second
	return cfg
}

func env(room string, roomSeq uint64) wire.Envelope {
	return wire.Envelope{V: wire.Version, ID: "peer-1-" + strconv.FormatUint(roomSeq, 10), Room: room, From: "peer", Boot: 1, Seq: roomSeq, SentNS: 1, Body: "b", RoomSeq: roomSeq}
}

func (r *pipeRig) live(t *testing.T, e wire.Envelope) {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	r.p.handle(inbound{topic: wire.RoomTopic(e.Room, e.From), payload: b, recvNS: time.Now().UnixNano()})
}

func (r *pipeRig) reply(t *testing.T, req wire.SyncRequest, lastSeq uint64, more bool, msgs ...wire.Envelope) {
	t.Helper()
	b, err := json.Marshal(wire.SyncReply{V: wire.Version, ReqID: req.ReqID, Conv: req.Conv, Messages: msgs, LastSeq: lastSeq, More: more})
	if err != nil {
		t.Fatal(err)
	}
	r.p.handle(inbound{topic: wire.InboxTopic("me"), payload: b, recvNS: time.Now().UnixNano()})
}

// listReply answers a List request with convs (key, last seq, ...).
func (r *pipeRig) listReply(t *testing.T, req wire.SyncRequest, more bool, convs ...wire.ConvInfo) {
	t.Helper()
	b, err := json.Marshal(wire.SyncReply{V: wire.Version, ReqID: req.ReqID, Conv: req.Conv, Messages: []wire.Envelope{}, Convs: convs, More: more})
	if err != nil {
		t.Fatal(err)
	}
	r.p.handle(inbound{topic: wire.InboxTopic("me"), payload: b, recvNS: time.Now().UnixNano()})
}

// tick advances the pipeline's clock by d and runs its timers.
func (r *pipeRig) tick(d time.Duration) {
	r.p.tick(r.clock.advance(d))
}

func (r *pipeRig) shown() (seqs []uint64, via []string) {
	for _, m := range r.got.messages() {
		seqs = append(seqs, m.Env.RoomSeq)
		via = append(via, m.Via)
	}
	return seqs, via
}

func wantSeqs(t *testing.T, r *pipeRig, want ...uint64) {
	t.Helper()
	got, _ := r.shown()
	if len(got) != len(want) {
		t.Fatalf("shown room seqs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("shown room seqs %v, want %v", got, want)
		}
	}
}

// baseline answers the fresh-room request so the room stands at lastSeq.
func (r *pipeRig) baseline(t *testing.T, lastSeq uint64) {
	t.Helper()
	r.p.onConnected()
	req := r.fc.last(t)
	if req.Last < 1 {
		t.Fatalf("fresh room: request %+v, want Last ≥ 1", req)
	}
	r.reply(t, req, lastSeq, false)
}
