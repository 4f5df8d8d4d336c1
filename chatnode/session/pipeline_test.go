package session

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// These tests drive the delivery pipeline directly and synchronously (no
// goroutine, a fake client that records sync requests), playing the broker's
// room log by hand: gap repair, hold-back, duplicates by room sequence,
// catch-up from the state file, history, and the no-room-log fallback.

func TestGapRepairedFromRoomLog(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	r.baseline(t, 0)
	for _, s := range []uint64{1, 2, 4, 5} {
		r.live(t, env("r1", s))
	}
	wantSeqs(t, r, 1, 2) // 4 and 5 are held back
	r.tick(200 * time.Millisecond)
	req := r.fc.last(t)
	if req.AfterSeq != 2 || req.Conv != "r1" {
		t.Fatalf("gap request %+v, want after_seq 2 in r1", req)
	}
	r.reply(t, req, 5, false, env("r1", 3))
	wantSeqs(t, r, 1, 2, 3, 4, 5)
	if _, via := r.shown(); via[2] != nodelog.ViaSync || via[3] != nodelog.ViaLive {
		t.Errorf("via %v, want sync for 3 and live for the rest", via)
	}
	// The live copy of 3 arriving late is a duplicate by room sequence.
	r.live(t, env("r1", 3))
	wantSeqs(t, r, 1, 2, 3, 4, 5)
	if d := r.s.Stats().Duplicates; d != 1 {
		t.Errorf("duplicates %d, want 1", d)
	}
}

func TestGapHoldBackIsBounded(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	r.baseline(t, 0)
	r.live(t, env("r1", 1))
	r.live(t, env("r1", 3))
	wantSeqs(t, r, 1)
	r.tick(1500 * time.Millisecond) // past gap_wait: show what came after the gap
	wantSeqs(t, r, 1, 3)
	r.live(t, env("r1", 2)) // the missing one, late: still shown, once
	wantSeqs(t, r, 1, 3, 2)
	r.live(t, env("r1", 2))
	wantSeqs(t, r, 1, 3, 2)
}

func TestCatchUpFromStateAfterRestart(t *testing.T) {
	cfg := rigConfig(t, "r1")
	cfg.StateDir = t.TempDir()
	r := newRig(t, cfg)
	r.baseline(t, 10)
	r.live(t, env("r1", 11))
	r.live(t, env("r1", 12))
	r.p.save(true)
	if err := r.s.release(); err != nil { // what Close does last
		t.Fatal(err)
	}

	r2 := newRig(t, cfg) // the restarted node
	r2.p.onConnected()
	list := r2.fc.lastList(t)
	if len(list.Rooms) != 1 || list.Rooms[0] != "r1" {
		t.Fatalf("list request %+v, want rooms [r1]", list)
	}
	r2.listReply(t, list, false, wire.ConvInfo{Conv: "r1", LastSeq: 15})
	req := r2.fc.last(t)
	if req.AfterSeq != 12 || req.Last != 0 {
		t.Fatalf("catch-up after restart %+v, want after_seq 12", req)
	}
	// Pages: 13..14 with more, then 15.
	r2.reply(t, req, 15, true, env("r1", 13), env("r1", 14))
	next := r2.fc.last(t)
	if next.AfterSeq != 14 {
		t.Fatalf("next page request %+v, want after_seq 14", next)
	}
	r2.live(t, env("r1", 12)) // redelivered by the broker's session: already shown before the restart
	r2.reply(t, next, 15, false, env("r1", 15))
	wantSeqs(t, r2, 13, 14, 15)
	if _, via := r2.shown(); via[0] != nodelog.ViaSync {
		t.Errorf("via %v, want sync", via)
	}
}

func TestFreshRoomBaselineKeepsLiveMessages(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	r.p.onConnected()
	req := r.fc.last(t)
	r.live(t, env("r1", 11)) // arrives before the baseline answer
	r.live(t, env("r1", 10))
	wantSeqs(t, r)
	r.reply(t, req, 11, false, env("r1", 11))
	wantSeqs(t, r, 10, 11)
}

func TestHistoryOnJoinAndCommand(t *testing.T) {
	cfg := rigConfig(t, "r1")
	cfg.History = 2
	r := newRig(t, cfg)
	r.p.onConnected()
	req := r.fc.last(t)
	if req.Last != max(2, baselineLookback) {
		t.Fatalf("join request %+v, want last %d", req, max(2, baselineLookback))
	}
	r.reply(t, req, 7, false, env("r1", 6), env("r1", 7))
	wantSeqs(t, r, 6, 7)
	if _, via := r.shown(); via[0] != nodelog.ViaHistory {
		t.Errorf("via %v, want history", via)
	}
	r.live(t, env("r1", 8))
	wantSeqs(t, r, 6, 7, 8)
	r.p.history("r1", 3)
	h := r.fc.last(t)
	if h.Last != 3 {
		t.Fatalf("/history request %+v, want last 3", h)
	}
	r.reply(t, h, 8, false, env("r1", 6), env("r1", 7), env("r1", 8))
	wantSeqs(t, r, 6, 7, 8, 6, 7, 8) // history is shown again on request, not deduplicated away
}

func TestNoRoomLogSaidOnce(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	r.p.onConnected()
	e := env("r1", 0)
	r.live(t, e) // no room sequence: shown at once
	wantSeqs(t, r, 0)
	r.tick(1500 * time.Millisecond)
	r.tick(1500 * time.Millisecond)
	r.p.onConnected() // a reconnect asks again but says nothing more
	r.tick(5 * time.Second)
	r.p.history("r1", 5)
	if len(r.got.infos) != 2 || !strings.Contains(r.got.infos[0], "no room log") || !strings.Contains(r.got.infos[1], "no history") {
		t.Errorf("notices %q, want one no-room-log notice and one no-history answer", r.got.infos)
	}
}

// TestFreshRoomStartsWhereTheSubscriptionBegan: the baseline answer can
// overtake live messages sent after the node subscribed (paho runs handlers
// concurrently); the broker says where the subscription began (joined_seq)
// and the node starts its order there, so they are still shown, and asks the
// log for them in case they never come live (no later message would show the
// gap).
func TestFreshRoomStartsWhereTheSubscriptionBegan(t *testing.T) {
	for _, tt := range []struct {
		name string
		live bool
	}{{"live overtaken by the answer", true}, {"never live", false}} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigConfig(t, "r1"))
			r.p.onConnected()
			req := r.fc.last(t)
			b, err := json.Marshal(wire.SyncReply{V: wire.Version, ReqID: req.ReqID, Conv: "r1",
				Messages: []wire.Envelope{env("r1", 5)}, LastSeq: 5, JoinedSeq: ptr(uint64(3))})
			if err != nil {
				t.Fatal(err)
			}
			r.p.handle(inbound{topic: wire.InboxTopic("me"), payload: b})
			asked := len(r.fc.reqs)
			if tt.live {
				r.live(t, env("r1", 5))
				r.live(t, env("r1", 4))
				wantSeqs(t, r, 4, 5)
				r.tick(200 * time.Millisecond)
				if len(r.fc.reqs) != asked {
					t.Errorf("requests %+v: nothing was missing, nothing should be asked", r.fc.reqs[asked:])
				}
			} else {
				r.tick(1500 * time.Millisecond) // quiet for gap_wait: the node asks
				if len(r.fc.reqs) == asked {
					t.Fatal("no request for what came after 3")
				}
				for _, req := range r.fc.reqs[asked:] {
					if req.AfterSeq != 3 || req.Last != 0 {
						t.Fatalf("request %+v, want one for what came after 3", req)
					}
					r.reply(t, req, 5, false, env("r1", 4), env("r1", 5))
				}
				wantSeqs(t, r, 4, 5)
			}
			r.live(t, env("r1", 3)) // from before the subscription: not ours to show
			wantSeqs(t, r, 4, 5)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestOneMessageAtTwoRoomSeqsFillsItsPlace: a message stored twice (a resend
// racing its original) is shown once, and its second room sequence number
// does not leave a gap that holds everything after it back.
func TestOneMessageAtTwoRoomSeqsFillsItsPlace(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	r.baseline(t, 0)
	r.live(t, env("r1", 1))
	again := env("r1", 1)
	again.RoomSeq = 2
	r.live(t, env("r1", 3))
	r.live(t, again)
	wantSeqs(t, r, 1, 3)
	if d := r.s.Stats().Duplicates; d != 1 {
		t.Errorf("duplicates %d, want 1", d)
	}
	if len(r.fc.reqs) != 1 {
		t.Errorf("sync requests %+v: no gap should have been fetched", r.fc.reqs)
	}
}

// TestGivenUpGapStillRepaired: when gap_wait passes without an answer (the
// request or its answer was lost), the node shows what came after the gap
// but keeps asking for the missing message, and shows it late when it comes.
func TestGivenUpGapStillRepaired(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	r.baseline(t, 0)
	r.live(t, env("r1", 1))
	r.live(t, env("r1", 3))
	r.tick(200 * time.Millisecond) // the gap request, never answered
	r.tick(1500 * time.Millisecond)
	wantSeqs(t, r, 1, 3)
	asked := len(r.fc.reqs)
	r.tick(2500 * time.Millisecond)
	var req wire.SyncRequest
	for _, q := range r.fc.reqs[asked:] {
		if q.AfterSeq == 1 && q.Limit == 1 {
			req = q
		}
	}
	if req.ReqID == "" {
		t.Fatalf("requests %+v, want the hole after 1 asked again", r.fc.reqs[asked:])
	}
	r.reply(t, req, 3, false, env("r1", 2))
	wantSeqs(t, r, 1, 3, 2)
	asked = len(r.fc.reqs)
	r.tick(5 * time.Second)
	for _, q := range r.fc.reqs[asked:] {
		if q.AfterSeq < 3 {
			t.Errorf("asked %+v again after the hole was filled", q)
		}
	}
}

// TestQuietRoomAsksForItsTail: a lost last message leaves no later one to
// show the gap, so a room that goes quiet asks the log once.
func TestQuietRoomAsksForItsTail(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	r.baseline(t, 0)
	r.live(t, env("r1", 1))
	asked := len(r.fc.reqs)
	r.tick(1500 * time.Millisecond)
	if len(r.fc.reqs) == asked || r.fc.last(t).AfterSeq != 1 {
		t.Fatalf("requests %+v, want the tail after 1", r.fc.reqs[asked:])
	}
	for _, q := range r.fc.reqs[asked:] {
		r.reply(t, q, 2, false, env("r1", 2))
	}
	wantSeqs(t, r, 1, 2)
	asked = len(r.fc.reqs)
	r.tick(3 * time.Second)
	if len(r.fc.reqs) != asked {
		t.Errorf("asked again without new traffic: %+v", r.fc.reqs[asked:])
	}
}

// TestNoRoomLogDedupAndSenderGaps: without a room log (Mosquitto) there is no
// room sequence; duplicates are dropped by id and logged as such, and a gap
// in a sender's own sequence is reported once gap_wait has passed.
func TestNoRoomLogDedupAndSenderGaps(t *testing.T) {
	r := newRig(t, rigConfig(t, "r1"))
	logged := logtest.NewLocal(r.s.log.Logger)
	r.p.onConnected()
	r.tick(1500 * time.Millisecond) // no answer: best effort from here
	for _, seq := range []uint64{1, 1, 3} {
		e := env("r1", 0)
		e.Seq, e.ID = seq, "peer-1-"+strconv.FormatUint(seq, 10)
		r.live(t, e)
	}
	if got := r.got.messages(); len(got) != 2 || got[0].Env.Seq != 1 || got[1].Env.Seq != 3 {
		t.Fatalf("shown %+v, want seqs 1 and 3 once each", got)
	}
	if d := r.s.Stats().Duplicates; d != 1 {
		t.Errorf("duplicates %d, want 1", d)
	}
	r.tick(1500 * time.Millisecond)
	var dupLines, gaps int
	for _, e := range logged.AllEntries() {
		switch {
		case e.Data[nodelog.FieldEvent] == nodelog.EventReceived && e.Data[nodelog.FieldDuplicate] == true:
			dupLines++
		case e.Data[nodelog.FieldEvent] == nodelog.EventGap && e.Data[nodelog.FieldFrom] == "peer":
			gaps++
			if e.Data[nodelog.FieldAfterSeq] != uint64(1) || e.Data[nodelog.FieldMissing] != uint64(1) {
				t.Errorf("gap line %v, want after_seq 1, missing 1", e.Data)
			}
		}
	}
	if dupLines != 1 || gaps != 1 {
		t.Errorf("%d duplicate lines and %d sender gap lines, want 1 and 1", dupLines, gaps)
	}
}

// TestBaselineKeepsOwnUnconfirmedMessage: a room's baseline answer that
// holds one of the node's own messages still waiting for its echo (stored
// by a broker before the node's subscription there began) gives the node
// that message and what follows it; one already confirmed stays history.
func TestBaselineKeepsOwnUnconfirmedMessage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		awaiting bool
		want     []uint64
	}{
		{"waiting for its echo", true, []uint64{2, 3}},
		{"confirmed already", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rigConfig(t, "r1")
			cfg.History = 0
			r := newRig(t, cfg)
			own := env("r1", 2)
			own.From, own.ID = "me", "me-1-1"
			echo := make(chan struct{})
			if tc.awaiting {
				r.s.mu.Lock()
				r.s.out.echoes[own.ID] = echo
				r.s.mu.Unlock()
			}
			r.p.onConnected()
			req := r.fc.last(t)
			r.reply(t, req, 3, false, env("r1", 1), own, env("r1", 3))
			wantSeqs(t, r, tc.want...)
			select {
			case <-echo:
				if !tc.awaiting {
					t.Fatal("echo closed without a waiter")
				}
			default:
				if tc.awaiting {
					t.Fatal("the node's own message in the baseline did not confirm its send")
				}
			}
		})
	}
}
