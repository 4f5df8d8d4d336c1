package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session"
)

// tabIDPattern is what a tab id may look like: it names a directory.
var tabIDPattern = regexp.MustCompile(`^[a-z0-9]{8,32}$`)

// WebSocket timing: a page that answers no ping for pongWait is gone.
const (
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = pongWait / 2
)

// handleWS opens a tab (fromPage has checked the Origin): a WebSocket and
// the tab's own device session, until either side ends.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	lg, ok := s.loginOf(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not signed in")
		return
	}
	tabID := r.URL.Query().Get("tab")
	if !tabIDPattern.MatchString(tabID) {
		writeError(w, http.StatusBadRequest, "tab: 8 to 32 lower-case letters and digits")
		return
	}
	// CheckOrigin: fromPage checked it too; the upgrader must not fall back to its own rule.
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: s.sameOrigin}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the request
	}
	// The longest legal frame: a body of MaxBody bytes, JSON-escaped (6
	// bytes per byte at worst), and the frame around it.
	conn.SetReadLimit(int64(s.cfg.Limits.MaxBody)*6 + 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := &tab{srv: s, conn: conn, login: lg, id: tabID, out: newOutbox(maxQueuedFrames),
		sendLimit: newBucket(s.cfg.Limits.SendRate, s.cfg.Limits.SendBurst, s.cfg.Now())}
	actx, acancel := context.WithTimeout(ctx, s.cfg.Node.ConnectTimeout+5*time.Second)
	slot, err := s.tabs.acquire(actx, tabKey{user: lg.user, id: tabID}, lg, cancel)
	acancel()
	if err != nil {
		code := "retry"
		if errors.Is(err, errTooManyTabs) {
			code = "too-many-tabs"
		}
		t.fatal(code, err.Error())
		return
	}
	defer s.tabs.release(slot)
	if err := s.tabs.pruneDirs(s.cfg.Node.StateDir, lg.user, keepDirsPerUser*s.cfg.Limits.MaxTabsPerUser); err != nil {
		t.logErr(err).Warn("prune the state dirs of closed tabs")
	}
	t.run(ctx, cancel, slot)
}

// maxQueuedFrames bounds the frames waiting for a slow page; past it the
// tab is closed and the page reconnects (catch-up and history refill it).
const maxQueuedFrames = 10000

// tab is one browser tab: a WebSocket and its own device session.
type tab struct {
	srv       *Server
	conn      *websocket.Conn
	login     *login
	id        string
	s         *session.Session
	out       *outbox
	sendLimit *bucket   // used by the reader goroutine only
	fillOnce  sync.Once // asks for the history once, at the first connection
}

// run serves the tab's session until the page leaves, the session is
// refused, or ctx ends (sign-out, shutdown, takeover by a newer connection).
func (t *tab) run(ctx context.Context, cancel context.CancelFunc, slot *tabSlot) {
	cfg := t.srv.cfg.Node
	cfg.Nick, cfg.User, cfg.Password = t.login.user, t.login.user, t.login.password
	cfg.Rooms = t.login.rooms
	cfg.ClientID = ""
	cfg.StateDir = filepath.Join(cfg.StateDir, t.login.user, t.id)
	log := t.srv.log.WithField(nodelog.FieldNode, t.login.user+"@web").WithField("tab", t.id)
	s, err := session.New(cfg, log, session.Options{OnEvent: t.onEvent})
	if err != nil {
		t.fatal("retry", fmt.Sprintf("cannot open this tab's session: %v", err))
		return
	}
	t.s = s
	log.WithField(nodelog.FieldEvent, eventTab).WithField(nodelog.FieldClientID, s.ClientID()).Info("tab opened")
	t.pushHello()
	s.Start(ctx)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer cancel()
		t.writeLoop(ctx)
	}()
	go func() {
		select {
		case <-s.Refused():
			t.out.push(outFrame{T: frameFatal, Code: "refused", Text: fmt.Sprintf("the broker refused %s: %v", t.login.user, s.Err())})
		case <-ctx.Done():
		}
	}()
	t.readLoop(ctx)
	cancel()
	<-writerDone
	cctx, ccancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout)
	n := s.Close(cctx)
	ccancel()
	if slot.takenOver.Load() {
		t.closeWith(websocket.ClosePolicyViolation, "taken-over")
	} else {
		t.closeWith(websocket.CloseNormalClosure, "bye")
	}
	log.WithField(nodelog.FieldEvent, eventTab).WithField(nodelog.FieldCount, n).Info("tab closed")
}

// fatal tells the page why its tab ends, and closes the WebSocket.
func (t *tab) fatal(code, text string) {
	if err := t.conn.SetWriteDeadline(time.Now().Add(writeWait)); err == nil {
		if err := t.conn.WriteJSON(outFrame{T: frameFatal, Code: code, Text: text}); err != nil {
			t.logErr(err).Debug("tell the page its tab ends")
		}
	}
	t.closeWith(websocket.CloseNormalClosure, code)
}

func (t *tab) closeWith(code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := t.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.logErr(err).Debug("close frame")
	}
	if err := t.conn.Close(); err != nil {
		t.logErr(err).Debug("close websocket")
	}
}

// logErr is the tab's log entry for a failure of its own.
func (t *tab) logErr(err error) *logrus.Entry {
	return t.srv.log.WithFields(logrus.Fields{nodelog.FieldEvent: eventTab, nodelog.FieldError: err.Error()})
}

// writeLoop is the one goroutine writing to the WebSocket: queued frames
// and pings, until the page is gone, the queue overflowed, or ctx ends.
func (t *tab) writeLoop(ctx context.Context) {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			if err := t.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case <-t.out.ready:
			frames, overflow := t.out.drain()
			for _, f := range frames {
				if f.T == frameMsg && !t.out.firstShow(f.Msg.ID) {
					continue
				}
				if err := t.conn.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
					return
				}
				if err := t.conn.WriteJSON(f); err != nil || f.T == frameFatal {
					return
				}
			}
			if overflow {
				t.fatal("retry", "this page fell too far behind; reconnecting")
				return
			}
		}
	}
}
