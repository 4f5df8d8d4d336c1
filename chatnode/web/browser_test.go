//go:build browser

package web

// The browser tests drive the page in a real headless Chromium (Debian's
// chromium package) with chromedp: `make test-browser`. They wait on DOM
// conditions with deadlines (chromedp.Poll), never on sleeps.

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/config"
)

// pageWait bounds every wait on the page.
const pageWait = 20 * time.Second

// chromium finds the browser, or skips (fails with DISTCHAT_BROWSER=1,
// which make test-browser sets: there a missing browser is an error).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("DISTCHAT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("DISTCHAT_BROWSER") == "1" {
		t.Fatal("no chromium found (apt-get install chromium, or set DISTCHAT_CHROMIUM)")
	}
	t.Skip("no chromium found; make test-browser installs none, .ci/run does")
	return ""
}

// browserBroker runs the broker binary as a child process, with users and
// a data dir, on a port it keeps across restarts.
func browserBroker(t *testing.T) (*brokertest.Process, []config.User) {
	t.Helper()
	users := brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"}, "lobby")
	b, err := yaml.Marshal(config.UsersFile{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(usersFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	p := &brokertest.Process{Bin: brokertest.Build(t), Args: []string{"-tcp", addr, "-http", "", "-data", t.TempDir(),
		"-users", usersFile, "-log-level", "info"}}
	p.Start(t)
	return p, users
}

// page is one browser user's tab.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait+5*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %s: %v (the page says: %s)", p.name, what, err, p.says())
	}
}

// says is the page's status and notice lines, for failure reports.
func (p *page) says() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent + ' | ' + document.getElementById('notice').textContent + ' | ' + document.getElementById('signin-error').textContent`))
	if err != nil {
		return err.Error()
	}
	return s
}

// until waits for a JavaScript condition on the page to hold.
func (p *page) until(what, cond string) {
	p.t.Helper()
	p.do("wait for "+what, chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(pageWait), chromedp.WithPollingInterval(20*time.Millisecond))(ctx, tg)
		return chromedp.Void{}, err
	}))
}

func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// countJS counts the shown messages of the current conversation whose text is body.
func countJS(body string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#messages li .body')].filter(e => e.textContent === %s).length`, strconv.Quote(body))
}

func (p *page) signIn(url, user, password string) {
	p.t.Helper()
	p.do("sign in",
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#chat-view")))
	p.until("connected", `document.getElementById('status').dataset.state === 'connected'`)
}

func (p *page) say(text string) {
	p.t.Helper()
	p.do("say "+text, chromedp.SendKeys(chromedp.CSS("#text"), text+kb.Enter))
}

func (p *page) open(conv string) {
	p.t.Helper()
	sel := fmt.Sprintf(`#sidebar button[data-conv=%s]`, strconv.Quote(conv))
	p.do("open "+conv, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
	p.until("current "+conv, fmt.Sprintf(`document.getElementById('title').textContent === %s`, strconv.Quote(conv)))
}

// seesOnce waits until each body is shown exactly once in the current conversation.
func (p *page) seesOnce(bodies ...string) {
	p.t.Helper()
	for _, b := range bodies {
		p.until(strconv.Quote(b)+" shown once", countJS(b)+" === 1")
	}
}

// shown returns the bodies of the current conversation, in page order.
func (p *page) shown() []string {
	return eval[[]string](p, `[...document.querySelectorAll('#messages li .body')].map(e => e.textContent)`)
}

func TestBrowserChat(t *testing.T) {
	exe := chromium(t)
	br, users := browserBroker(t)
	node := config.DefaultNode()
	node.Broker = config.Brokers{"tcp://" + br.Addr}
	node.History = 50
	node.StateDir = t.TempDir()
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.WarnLevel)
	srv, err := New(Config{Node: node, Users: users}, logrus.NewEntry(l))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1000, 640), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	newPage := func(name string) *page {
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext()) // own cookies
		t.Cleanup(cancel)
		if err := chromedp.Do(ctx); err != nil { // the tab lives as long as the context of its first run: no timeout here
			t.Fatalf("open a tab for %s: %v", name, err)
		}
		return &page{t: t, name: name, ctx: ctx}
	}
	alice, bob := newPage("alice"), newPage("bob")
	alice.signIn(hs.URL, "alice", "alice-pw")
	bob.signIn(hs.URL, "bob", "bob-pw")

	// A room conversation.
	alice.say("hello bob")
	bob.seesOnce("hello bob")
	bob.say("hi alice")
	alice.seesOnce("hello bob", "hi alice")

	// A direct message: bob opens a conversation with alice; alice sees it unread.
	bob.do("open a DM", chromedp.SendKeys(chromedp.CSS("#newdm-user"), "alice"+kb.Enter))
	bob.until("the DM is current", `document.getElementById('title').textContent === '@alice'`)
	bob.say("just between us")
	bob.seesOnce("just between us")
	alice.until("an unread DM", `(document.querySelector('#dms button[data-conv="@bob"] .unread') || {}).textContent === '1'`)
	alice.open("@bob")
	alice.seesOnce("just between us")
	alice.say("agreed")
	bob.seesOnce("just between us", "agreed")

	// A hostile message renders as text.
	hostile := `<img src=x onerror="window.pwned=1"><script>window.pwned=1</script><b>bold</b>`
	alice.open("#lobby")
	alice.say(hostile)
	bob.open("#lobby")
	bob.seesOnce(hostile)
	for _, p := range []*page{alice, bob} {
		p.seesOnce(hostile)
		if n := eval[int](p, `document.querySelectorAll('#messages img, #messages script, #messages b').length`); n != 0 {
			t.Errorf("%s: the hostile message made %d elements", p.name, n)
		}
		if pwned := eval[bool](p, `window.pwned === 1`); pwned {
			t.Errorf("%s: the hostile message ran a script", p.name)
		}
	}

	// Bob reloads: the page comes back with the room's history, once.
	bob.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#chat-view")))
	bob.until("connected after the reload", `document.getElementById('status').dataset.state === 'connected'`)
	bob.seesOnce("hello bob", "hi alice", hostile)

	// The broker is killed mid-conversation and restarted on its data dir.
	alice.say("before the kill")
	bob.seesOnce("before the kill")
	br.Kill(t)
	for _, p := range []*page{alice, bob} {
		p.until("reconnecting", `document.getElementById('status').dataset.state === 'reconnecting'`)
	}
	alice.say("while down, from alice")
	bob.say("while down, from bob")
	br.Start(t)
	for _, p := range []*page{alice, bob} {
		p.until("connected again", `document.getElementById('status').dataset.state === 'connected'`)
	}
	alice.say("after the restart")
	all := []string{"hello bob", "hi alice", hostile, "before the kill", "while down, from alice", "while down, from bob", "after the restart"}
	alice.seesOnce(all...)
	bob.seesOnce(all...)
	a, b := alice.shown(), bob.shown()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("the pages differ:\nalice %q\nbob   %q", a, b)
	}
	if len(a) != len(all) {
		t.Errorf("alice shows %d messages, want %d: %q", len(a), len(all), a)
	}
	for _, p := range []*page{alice, bob} {
		if n := eval[int](p, `document.querySelectorAll('#outbox li').length`); n != 0 {
			t.Errorf("%s: %d messages still shown as being sent", p.name, n)
		}
	}
	screenshot(t, alice)

	// At phone width the page fits the screen and the room list folds behind a button.
	bob.do("phone width", chromedp.EmulateViewport(390, 800))
	bob.until("no sideways scrolling", `document.documentElement.scrollWidth <= window.innerWidth`)
	bob.do("open the room list", chromedp.WaitVisible(chromedp.CSS("#menu")), chromedp.Click(chromedp.CSS("#menu")),
		chromedp.WaitVisible(chromedp.CSS(`#sidebar button[data-conv="@alice"]`)))
	bob.open("@alice")
	bob.seesOnce("just between us", "agreed")
}

// screenshot writes alice's page to results/web.png (the README shows it).
func screenshot(t *testing.T, p *page) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join("..", "..", "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
