package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/internal/syncbuf"
	"github.com/distchat/distchat/config"
)

var testPasswords = map[string]string{"alice": "alice-secret-pw", "bob": "bob-secret-pw"}

// syncBuffer is a log sink safe for the session's goroutines.
type syncBuffer = syncbuf.Buffer

// fixture is a web server (httptest) in front of a real broker.
type fixture struct {
	srv  *Server
	http *httptest.Server
	logs *syncBuffer
	now  time.Time
	mu   sync.Mutex // guards now
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// newFixture starts a broker with alice and bob, and a web server on it.
// brokerUp false gives a server whose broker address answers nothing.
func newFixture(t *testing.T, tls bool, limits func(*Limits)) *fixture {
	t.Helper()
	users := brokertest.Users(t, testPasswords, "lobby")
	bc := brokertest.Config(t)
	bc.Auth.Users = users
	b := brokertest.Start(t, bc)
	node := config.DefaultNode()
	node.Broker = config.Brokers{b.URL}
	node.ConnectTimeout = 5 * time.Second
	node.StateDir = t.TempDir()
	f := &fixture{logs: &syncBuffer{}, now: time.Unix(1_800_000_000, 0)}
	l := logrus.New()
	l.SetOutput(f.logs)
	l.SetLevel(logrus.DebugLevel)
	lim := DefaultLimits()
	if limits != nil {
		limits(&lim)
	}
	srv, err := New(Config{Node: node, Users: users, TLS: tls, Limits: lim, Now: f.clock}, logrus.NewEntry(l))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv)
	t.Cleanup(func() {
		f.http.Close()
		srv.Close()
		for _, pw := range testPasswords {
			if strings.Contains(f.logs.String(), pw) {
				t.Errorf("a password is in the log")
			}
		}
	})
	return f
}

func (f *fixture) signIn(t *testing.T, origin, contentType, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", f.http.URL+"/api/signin", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func errorOf(t *testing.T, res *http.Response) string {
	t.Helper()
	var e struct{ Error string }
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return e.Error
}

func TestSignIn(t *testing.T) {
	f := newFixture(t, false, func(l *Limits) { l.SignInBurst = 20 })
	own := f.http.URL
	tests := []struct {
		name, origin, ctype, body string
		code                      int
		err                       string
	}{
		{"good", own, "application/json", `{"user":"alice","password":"alice-secret-pw"}`, 200, ""},
		{"no origin header (not a browser)", "", "application/json", `{"user":"bob","password":"bob-secret-pw"}`, 200, ""},
		{"wrong password", own, "application/json", `{"user":"alice","password":"bob-secret-pw"}`, 401, "wrong user name or password"},
		{"unknown user", own, "application/json", `{"user":"mallory","password":"x"}`, 401, "wrong user name or password"},
		{"form post from another site", "http://evil.example", "application/json", `{"user":"alice","password":"alice-secret-pw"}`, 403, "another site"},
		{"not JSON", own, "application/x-www-form-urlencoded", `user=alice`, 415, "JSON body"},
		{"too large", own, "application/json", `{"user":"alice","password":"` + strings.Repeat("x", 5000) + `"}`, 413, "too large"},
		{"garbage", own, "application/json", `{"user":`, 400, "sign-in takes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := f.signIn(t, tc.origin, tc.ctype, tc.body)
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.code)
			}
			cookies := res.Cookies()
			if tc.code != 200 {
				if len(cookies) != 0 {
					t.Errorf("a refused sign-in set a cookie")
				}
				if e := errorOf(t, res); !strings.Contains(e, tc.err) {
					t.Errorf("error %q, want it to say %q", e, tc.err)
				}
				return
			}
			if len(cookies) != 1 || cookies[0].Name != cookieName || cookies[0].Value == "" {
				t.Fatalf("cookies %v, want one %s", cookies, cookieName)
			}
		})
	}
}

func TestCookieFlags(t *testing.T) {
	for _, tls := range []bool{false, true} {
		f := newFixture(t, tls, nil)
		origin := f.http.URL
		if tls {
			origin = strings.Replace(origin, "http://", "https://", 1)
		}
		res := f.signIn(t, origin, "application/json", `{"user":"alice","password":"alice-secret-pw"}`)
		if res.StatusCode != 200 {
			t.Fatalf("tls %v: sign-in: %d %s", tls, res.StatusCode, errorOf(t, res))
		}
		raw := res.Header.Get("Set-Cookie")
		for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
			if !strings.Contains(raw, want) {
				t.Errorf("tls %v: Set-Cookie %q lacks %s", tls, raw, want)
			}
		}
		if got := strings.Contains(raw, "Secure"); got != tls {
			t.Errorf("tls %v: Set-Cookie %q: Secure is %v", tls, raw, got)
		}
	}
}

func TestSignInRateLimit(t *testing.T) {
	f := newFixture(t, false, func(l *Limits) { l.SignInBurst, l.SignInPerMinute = 3, 6 })
	bad := `{"user":"alice","password":"guess"}`
	for i := range 3 {
		if res := f.signIn(t, "", "application/json", bad); res.StatusCode != 401 {
			t.Fatalf("attempt %d: %d, want 401", i+1, res.StatusCode)
		}
	}
	res := f.signIn(t, "", "application/json", `{"user":"alice","password":"alice-secret-pw"}`)
	if res.StatusCode != 429 {
		t.Fatalf("4th attempt: %d, want 429", res.StatusCode)
	}
	if e := errorOf(t, res); !strings.Contains(e, "too many sign-in attempts") {
		t.Errorf("error %q", e)
	}
	f.advance(10 * time.Second) // 6 a minute: one more after 10 s
	if res := f.signIn(t, "", "application/json", `{"user":"alice","password":"alice-secret-pw"}`); res.StatusCode != 200 {
		t.Fatalf("after 10 s: %d, want 200", res.StatusCode)
	}
}

func TestPageHeaders(t *testing.T) {
	f := newFixture(t, false, nil)
	res, err := http.Get(f.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.Contains(string(b), `id="signin"`) {
		t.Fatalf("page: %d %.80q", res.StatusCode, b)
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff")
	}
	js, err := staticFiles.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if bytes.Contains(js, []byte(bad)) {
			t.Errorf("app.js uses %s: message text must go in with textContent", bad)
		}
	}
}

// cookieFor signs user in and returns the session cookie.
func (f *fixture) cookieFor(t *testing.T, user string) *http.Cookie {
	t.Helper()
	res := f.signIn(t, "", "application/json", `{"user":"`+user+`","password":"`+testPasswords[user]+`"}`)
	if res.StatusCode != 200 {
		t.Fatalf("sign in %s: %d", user, res.StatusCode)
	}
	return res.Cookies()[0]
}

func (f *fixture) dial(t *testing.T, cookie *http.Cookie, origin, tab string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if cookie != nil {
		h.Set("Cookie", cookie.String())
	}
	url := "ws" + strings.TrimPrefix(f.http.URL, "http") + "/ws?tab=" + tab
	c, res, err := websocket.DefaultDialer.Dial(url, h)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, res, err
}

func TestWebSocketRefusals(t *testing.T) {
	f := newFixture(t, false, nil)
	alice := f.cookieFor(t, "alice")
	tests := []struct {
		name   string
		cookie *http.Cookie
		origin string
		tab    string
		code   int
	}{
		{"other origin", alice, "http://evil.example", "tab00001", 403},
		{"other port", alice, "http://127.0.0.1:1", "tab00001", 403},
		{"no origin", alice, "", "tab00001", 403},
		{"not signed in", nil, f.http.URL, "tab00001", 401},
		{"forged cookie", &http.Cookie{Name: cookieName, Value: "forged"}, f.http.URL, "tab00001", 401},
		{"bad tab id", alice, f.http.URL, "../../etc", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, res, err := f.dial(t, tc.cookie, tc.origin, tc.tab)
			if err == nil {
				t.Fatal("the WebSocket opened")
			}
			if res == nil || res.StatusCode != tc.code {
				t.Fatalf("answer %v, want %d", res, tc.code)
			}
		})
	}
}

// reader collects a tab's frames on a goroutine, so tests wait on them
// with deadlines.
type reader struct {
	frames chan outFrame
	closed chan error
}

func read(c *websocket.Conn) *reader {
	r := &reader{frames: make(chan outFrame, 1000), closed: make(chan error, 1)}
	go func() {
		for {
			var f outFrame
			if err := c.ReadJSON(&f); err != nil {
				r.closed <- err
				return
			}
			r.frames <- f
		}
	}()
	return r
}

// wait returns the first frame that matches, failing after 10 s. A frame
// read before the WebSocket ended counts: the reader queues it before it
// reports the end, but select may see the end first.
func (r *reader) wait(t *testing.T, what string, match func(outFrame) bool) outFrame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-r.frames:
			if match(f) {
				return f
			}
		case err := <-r.closed:
			r.closed <- err // the reader has stopped: its slot is free for later waits
			for len(r.frames) > 0 {
				if f := <-r.frames; match(f) {
					return f
				}
			}
			t.Fatalf("waiting for %s: the WebSocket ended: %v", what, err)
		case <-deadline:
			t.Fatalf("waiting for %s: nothing within 10 s", what)
		}
	}
}

func (f *fixture) openTab(t *testing.T, cookie *http.Cookie, tab string) (*websocket.Conn, *reader) {
	t.Helper()
	c, _, err := f.dial(t, cookie, f.http.URL, tab)
	if err != nil {
		t.Fatalf("open tab %s: %v", tab, err)
	}
	r := read(c)
	r.wait(t, "hello", func(o outFrame) bool { return o.T == frameHello })
	r.wait(t, "connected", func(o outFrame) bool { return o.T == frameStatus && o.State == "connected" })
	return c, r
}

func isError(ref int64, text string) func(outFrame) bool {
	return func(o outFrame) bool { return o.T == frameError && o.Ref == ref && strings.Contains(o.Text, text) }
}

func TestWebSocketLimits(t *testing.T) {
	f := newFixture(t, false, func(l *Limits) { l.SendBurst, l.SendRate, l.MaxBody = 3, 1, 100 })
	c, r := f.openTab(t, f.cookieFor(t, "alice"), "limits01")
	sendFrame := func(ref int64, body string) {
		if err := c.WriteJSON(inFrame{T: reqSend, Ref: ref, Conv: "#lobby", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	sendFrame(1, strings.Repeat("x", 101))
	r.wait(t, "the size error", isError(1, "101 bytes long, the limit is 100"))
	sendFrame(2, "   ")
	r.wait(t, "the empty error", isError(2, "empty"))
	for ref := int64(3); ref <= 5; ref++ {
		sendFrame(ref, "ok")
		r.wait(t, "ack", func(o outFrame) bool { return o.T == frameAck && o.Ref == ref })
	}
	sendFrame(6, "one too many")
	r.wait(t, "the rate error", isError(6, "too fast"))
	f.advance(time.Second)
	sendFrame(7, "after a second")
	r.wait(t, "ack after a second", func(o outFrame) bool { return o.T == frameAck && o.Ref == 7 })
	if err := c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 100*6+2048)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.closed:
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Errorf("an oversized frame ended the tab with %v, want close 1009 (message too big)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an oversized frame did not end the tab")
	}
}

func TestChatBetweenTabs(t *testing.T) {
	f := newFixture(t, false, nil)
	ca, ra := f.openTab(t, f.cookieFor(t, "alice"), "alicetab1")
	_, rb := f.openTab(t, f.cookieFor(t, "bob"), "bobtab001")
	if err := ca.WriteJSON(inFrame{T: reqSend, Ref: 1, Conv: "#lobby", Body: "<b>hi</b> bob"}); err != nil {
		t.Fatal(err)
	}
	// Live or in the history bob's tab asked for at its connect: once either way.
	m := rb.wait(t, "alice's room message", func(o outFrame) bool { return o.T == frameMsg && o.Msg.From == "alice" })
	if m.Msg.Conv != "#lobby" || m.Msg.From != "alice" || m.Msg.Body != "<b>hi</b> bob" || m.Msg.RoomSeq == 0 {
		t.Errorf("bob got %+v", *m.Msg)
	}
	ra.wait(t, "alice's own echo", func(o outFrame) bool { return o.T == frameMsg && o.Msg.ID == m.Msg.ID })
	if err := ca.WriteJSON(inFrame{T: reqSend, Ref: 2, Conv: "@bob", Body: "psst"}); err != nil {
		t.Fatal(err)
	}
	dm := rb.wait(t, "alice's DM", func(o outFrame) bool { return o.T == frameMsg && o.Msg.Conv == "@alice" })
	if dm.Msg.Body != "psst" {
		t.Errorf("bob got DM %+v", *dm.Msg)
	}
	own := ra.wait(t, "alice's own DM", func(o outFrame) bool { return o.T == frameMsg && o.Msg.Conv == "@bob" })
	if own.Msg.ID != dm.Msg.ID || own.Msg.Via != viaSent {
		t.Errorf("alice's own DM %+v, bob's %+v", *own.Msg, *dm.Msg)
	}
}

func TestTabLimitAndTakeover(t *testing.T) {
	f := newFixture(t, false, func(l *Limits) { l.MaxTabsPerUser = 1 })
	alice := f.cookieFor(t, "alice")
	_, r1 := f.openTab(t, alice, "tabone01")
	c, _, err := f.dial(t, alice, f.http.URL, "tabtwo02")
	if err != nil {
		t.Fatal(err)
	}
	r2 := read(c)
	r2.wait(t, "the tab limit", func(o outFrame) bool { return o.T == frameFatal && o.Code == "too-many-tabs" })
	// The same tab id again (a reload) takes the tab over.
	f.openTab(t, alice, "tabone01")
	select {
	case err := <-r1.closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Text != "taken-over" {
			t.Errorf("the first connection ended with %v, want close reason taken-over", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first connection is still open")
	}
}

func TestPruneDirs(t *testing.T) {
	root := t.TempDir()
	tb := newTabs(10, 2)
	base := time.Unix(1_800_000_000, 0)
	names := []string{"oldest01", "older002", "opentab1", "newer003", "newest04"}
	for i, n := range names {
		d := filepath.Join(root, "alice", n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(d, at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "bob", "bobtab01"), 0o755); err != nil {
		t.Fatal(err)
	}
	slot, err := tb.acquire(t.Context(), tabKey{user: "alice", id: "opentab1"}, &login{user: "alice"}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.release(slot)
	if err := tb.pruneDirs(root, "alice", 2); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(filepath.Join(root, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range left {
		got = append(got, e.Name())
	}
	if want := []string{"newer003", "newest04", "opentab1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("left %v, want %v (the two newest and the open one)", got, want)
	}
	if _, err := os.Stat(filepath.Join(root, "bob", "bobtab01")); err != nil {
		t.Errorf("another user's dir: %v", err)
	}
}

func TestOutbox(t *testing.T) {
	o := newOutbox(3)
	for i := range 4 {
		o.push(outFrame{T: frameInfo, Text: fmt.Sprint(i)})
	}
	frames, overflow := o.drain()
	if len(frames) != 3 || !overflow {
		t.Errorf("4 frames into a box of 3: got %d, overflow %v; want 3 and true", len(frames), overflow)
	}
	for _, tc := range []struct {
		id    string
		first bool
	}{{"a", true}, {"b", true}, {"a", false}, {"b", false}, {"c", true}} {
		if got := o.firstShow(tc.id); got != tc.first {
			t.Errorf("firstShow(%s) = %v, want %v", tc.id, got, tc.first)
		}
	}
}

// request sends a body-less request with cookie and returns the answer,
// its body read and closed.
func (f *fixture) request(t *testing.T, method, path string, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Body.Close(); err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) me(t *testing.T, cookie *http.Cookie) int {
	t.Helper()
	return f.request(t, "GET", "/api/me", cookie).StatusCode
}

func TestSignOutEndsTabsAndSignIn(t *testing.T) {
	f := newFixture(t, false, nil)
	alice := f.cookieFor(t, "alice")
	_, r := f.openTab(t, alice, "signout1")
	res := f.request(t, "POST", "/api/signout", alice)
	if c := res.Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("sign-out cookies %v, want the session cookie deleted", c)
	}
	select {
	case <-r.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the tab is still open after sign-out")
	}
	if code := f.me(t, alice); code != http.StatusUnauthorized {
		t.Errorf("/api/me after sign-out: %d, want 401", code)
	}
}

func TestSignInExpires(t *testing.T) {
	f := newFixture(t, false, func(l *Limits) { l.SessionTTL = time.Hour })
	alice := f.cookieFor(t, "alice")
	if code := f.me(t, alice); code != http.StatusOK {
		t.Fatalf("/api/me: %d", code)
	}
	f.advance(time.Hour + time.Second)
	if code := f.me(t, alice); code != http.StatusUnauthorized {
		t.Errorf("/api/me after the TTL: %d, want 401", code)
	}
}

func TestTLSNodeWantsHTTPSOrigin(t *testing.T) {
	f := newFixture(t, true, nil)
	alice := f.cookieFor(t, "alice")
	// The fixture serves plain HTTP, so only the Origin check is under test.
	_, res, err := f.dial(t, alice, f.http.URL, "tlstab01")
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("http:// origin on a TLS node: %v %v, want 403", res, err)
	}
	c, _, err := f.dial(t, alice, strings.Replace(f.http.URL, "http://", "https://", 1), "tlstab01")
	if err != nil {
		t.Fatalf("https:// origin on a TLS node: %v", err)
	}
	read(c).wait(t, "hello", func(o outFrame) bool { return o.T == frameHello })
}
