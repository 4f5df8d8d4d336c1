package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/session"
)

// onEvent turns a session event into frames for the page. It runs on the
// session's goroutines and must not block: it only queues.
func (t *tab) onEvent(e session.Event) {
	switch e := e.(type) {
	case session.Message:
		t.out.push(outFrame{T: frameMsg, Msg: newMsgFrame(t.login.user, e)})
	case session.Status:
		switch {
		case e.Connected:
			t.out.push(outFrame{T: frameStatus, State: "connected"})
			t.fillOnce.Do(func() { go t.fill() })
			t.pushPresence()
		case e.Reconnecting:
			t.out.push(outFrame{T: frameStatus, State: "reconnecting"})
		default:
			t.out.push(outFrame{T: frameStatus, State: "reconnecting", Text: "connection to the broker lost"})
		}
	case session.PresenceChange:
		t.pushPresence()
	case session.Info:
		if strings.HasPrefix(e.Text, "no history in ") {
			return // an empty conversation shows as empty
		}
		t.out.push(outFrame{T: frameInfo, Text: e.Text})
	case session.ConnectFailed:
		if e.Final {
			t.out.push(outFrame{T: frameFatal, Code: "refused", Text: e.Err.Error()})
			return
		}
		t.out.push(outFrame{T: frameStatus, State: "reconnecting", Text: e.Err.Error()})
	}
}

// fill asks the room log for the recent history of every room and private
// conversation once the session is first connected, so a new or reloaded
// page shows them; messages the page already has are dropped by id.
func (t *tab) fill() {
	ctx, cancel := context.WithTimeout(context.Background(), t.srv.cfg.Node.ConnectTimeout)
	defer cancel()
	n := max(t.srv.cfg.Node.History, 1)
	for _, r := range t.s.Rooms() {
		t.s.History(r, n)
	}
	for _, d := range t.s.DMs(ctx) {
		t.s.History(d.Conv, n)
	}
}

// pushHello sends the tab's identity and its rooms.
func (t *tab) pushHello() {
	t.out.push(outFrame{T: frameHello, User: t.login.user, Device: t.s.ClientID(), Rooms: t.s.Rooms(), MaxBody: t.srv.cfg.Limits.MaxBody})
}

// pushPresence sends who is online, overall and in each joined room; the
// tab's own user while connected, as its presence may still be on its way.
func (t *tab) pushPresence() {
	me, connected := t.login.user, t.s.Connected()
	who := func(room string) []string {
		users := t.s.Who(room)
		if !connected || slices.Contains(users, me) {
			return users
		}
		return append(users, me)
	}
	f := outFrame{T: framePresence, Online: who(""), InRoom: map[string][]string{}}
	for _, r := range t.s.Rooms() {
		f.InRoom[r] = who(r)
	}
	t.out.push(f)
}

// readLoop serves the page's requests until the WebSocket ends or ctx ends.
func (t *tab) readLoop(ctx context.Context) {
	// A failure means the connection is closed already.
	stop := context.AfterFunc(ctx, func() { _ = t.conn.SetReadDeadline(time.Now()) })
	defer stop()
	alive := func(string) error { return t.conn.SetReadDeadline(time.Now().Add(pongWait)) }
	if alive("") != nil {
		return
	}
	t.conn.SetPongHandler(alive)
	for {
		_, data, err := t.conn.ReadMessage()
		if err != nil || alive("") != nil {
			return // an oversized frame ends the tab with close code 1009 (message too big)
		}
		var req inFrame
		if err := json.Unmarshal(data, &req); err != nil {
			t.out.push(outFrame{T: frameError, Text: "unreadable request"})
			continue
		}
		t.serve(ctx, req)
	}
}

// serve runs one request from the page.
func (t *tab) serve(ctx context.Context, req inFrame) {
	switch req.T {
	case reqSend:
		if err := t.send(ctx, req); err != nil {
			t.out.push(outFrame{T: frameError, Ref: req.Ref, Text: err.Error()})
		}
	case reqJoin:
		if err := t.s.Join(req.Room); err != nil {
			t.out.push(outFrame{T: frameError, Ref: req.Ref, Text: fmt.Sprintf("join %s: %v", req.Room, err)})
			return
		}
		t.s.History(req.Room, max(t.srv.cfg.Node.History, 1))
		t.pushHello()
	case reqLeave:
		if err := t.s.Leave(req.Room); err != nil {
			t.out.push(outFrame{T: frameError, Ref: req.Ref, Text: err.Error()})
			return
		}
		t.pushHello()
	default:
		t.out.push(outFrame{T: frameError, Ref: req.Ref, Text: fmt.Sprintf("unknown request %q", req.T)})
	}
}

// send checks a message against the limits and hands it to the session.
// The page hears "ack" at once and "done" (or "error") when the broker has
// it; the sender's own direct message is shown then, as it never comes back.
func (t *tab) send(ctx context.Context, req inFrame) error {
	lim := t.srv.cfg.Limits
	switch {
	case strings.TrimSpace(req.Body) == "":
		return errors.New("not sent: the message is empty")
	case len(req.Body) > lim.MaxBody:
		return fmt.Errorf("not sent: the message is %d bytes long, the limit is %d", len(req.Body), lim.MaxBody)
	case !utf8.ValidString(req.Body):
		return errors.New("not sent: the message is not valid UTF-8")
	case !t.sendLimit.take(t.srv.cfg.Now()):
		return fmt.Errorf("not sent: too fast, at most %g messages a second (%d at once); wait a moment", lim.SendRate, lim.SendBurst)
	}
	out := session.Outgoing{Body: req.Body}
	if req.Kind == wire.KindAction {
		out.Kind = wire.KindAction
	}
	switch {
	case strings.HasPrefix(req.Conv, "#"):
		out.Room = req.Conv[1:]
	case strings.HasPrefix(req.Conv, "@"):
		out.To = req.Conv[1:]
	default:
		return fmt.Errorf("not sent: unknown conversation %q", req.Conv)
	}
	sent, err := t.s.Send(ctx, out)
	if err != nil {
		return fmt.Errorf("not sent: %w", err)
	}
	t.out.push(outFrame{T: frameAck, Ref: req.Ref, ID: sent.ID, Queued: sent.Queued})
	go func() {
		select {
		case <-sent.Done:
		case <-ctx.Done():
			return
		}
		if sent.Err != nil {
			t.out.push(outFrame{T: frameError, Ref: req.Ref, ID: sent.ID, Text: "not sent: " + sent.Err.Error()})
			return
		}
		if out.To != "" {
			t.out.push(outFrame{T: frameMsg, Msg: &msgFrame{ID: sent.ID, Conv: req.Conv, From: t.login.user, Kind: out.Kind,
				Body: out.Body, SentNS: time.Now().UnixNano(), Via: viaSent}})
		}
		t.out.push(outFrame{T: frameDone, Ref: req.Ref, ID: sent.ID})
	}()
	return nil
}

// outbox queues frames for the writer: unbounded up to max, so onEvent
// never blocks the session, and closed (overflow) past it.
type outbox struct {
	max   int
	ready chan struct{}

	mu       sync.Mutex // guards frames, overflow; no lock is taken under it
	frames   []outFrame
	overflow bool

	// shown and order are the message ids sent to the page (writer only),
	// oldest first, at most maxShownIDs: the page never gets one twice.
	shown map[string]struct{}
	order []string
}

const maxShownIDs = 50000

func newOutbox(max int) *outbox {
	return &outbox{max: max, ready: make(chan struct{}, 1), shown: map[string]struct{}{}}
}

func (o *outbox) push(f outFrame) {
	o.mu.Lock()
	if len(o.frames) >= o.max {
		o.overflow = true
	} else {
		o.frames = append(o.frames, f)
	}
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

func (o *outbox) drain() ([]outFrame, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.frames
	o.frames = nil
	return f, o.overflow
}

// firstShow reports whether id is new to the page, and remembers it.
func (o *outbox) firstShow(id string) bool {
	if _, ok := o.shown[id]; ok {
		return false
	}
	o.shown[id] = struct{}{}
	o.order = append(o.order, id)
	if len(o.order) > maxShownIDs {
		delete(o.shown, o.order[0])
		o.order = o.order[1:]
	}
	return true
}
