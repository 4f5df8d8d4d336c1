// Package brokertest starts real distchat brokers in process for tests, in the
// shape of net/http/httptest (port 0, a temporary data directory, Close on
// t.Cleanup). The broker is the production one (broker.New), so tests
// exercise the same hooks, limits, storage and room log as a deployment.
package brokertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/config"
)

// Broker is a running test broker.
type Broker struct {
	Addr     string // the MQTT TCP listener's host:port; URL is tcp://Addr
	URL      string
	HTTPAddr string // the /healthz and /stats listener's host:port ("" if off)
	// Config is what the broker was started with, on its real addresses:
	// Start(t, b.Config) after Close restarts it on the same ports and data.
	Config config.Broker
	Server *broker.Server // the broker itself, for Stats and other direct access

	closeOnce sync.Once
	t         testing.TB
}

// Config returns the default broker configuration on 127.0.0.1:0 with a
// fresh data directory, in open development mode (add users with Users).
func Config(t testing.TB) config.Broker {
	t.Helper()
	c := config.DefaultBroker()
	c.TCP = "127.0.0.1:0"
	c.HTTP = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.LogLevel = "error"
	return c
}

// Users returns accounts for cfg.Auth.Users: each name in passwords with its
// password, hashed at bcrypt.MinCost (cheap, still real bcrypt), granted
// rooms ("*": all rooms).
func Users(t testing.TB, passwords map[string]string, rooms ...string) []config.User {
	t.Helper()
	users := make([]config.User, 0, len(passwords))
	for _, n := range slices.Sorted(maps.Keys(passwords)) {
		hash, err := bcrypt.GenerateFromPassword([]byte(passwords[n]), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("brokertest: hash password of %s: %v", n, err)
		}
		u := config.User{Name: n, PasswordHash: string(hash)}
		for _, r := range rooms {
			if r == "*" {
				u.AllRooms = true
			} else {
				u.Rooms = append(u.Rooms, r)
			}
		}
		users = append(users, u)
	}
	return users
}

// Start starts a broker with cfg, logging to t.Log, and closes it when the test ends.
func Start(t testing.TB, cfg config.Broker) *Broker {
	t.Helper()
	return StartLogged(t, cfg, nil)
}

// StartLogged is Start with the broker's log lines (JSON) also collected in
// out (nil: none), for tests that check what the broker logs.
func StartLogged(t testing.TB, cfg config.Broker, out *Lines) *Broker {
	t.Helper()
	b, err := start(t, cfg, out)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	return b
}

func start(t testing.TB, cfg config.Broker, out *Lines) (*Broker, error) {
	log, err := broker.NewLogger("json", cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	tw := &testWriter{t: t, also: out}
	log.SetOutput(tw)
	t.Cleanup(tw.stop) // runs after Close (cleanups are LIFO)
	srv, err := broker.New(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("new broker: %w", err)
	}
	b := &Broker{Server: srv, t: t}
	t.Cleanup(b.Close)
	if err := srv.Start(t.Context()); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	b.Addr = srv.Addr()
	b.URL = "tcp://" + b.Addr
	b.HTTPAddr = srv.HTTPAddr()
	cfg.TCP = b.Addr
	if b.HTTPAddr != "" {
		cfg.HTTP = b.HTTPAddr
	}
	b.Config = cfg
	return b, nil
}

// Close stops the broker gracefully; it is safe to call more than once.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		err := b.Server.Close()
		if errors.Is(err, broker.ErrMochiCloseHang) {
			// Mochi's own deadlock, which the broker survives; others still fail.
			b.t.Logf("brokertest: close broker: %v", err)
			err = withoutMochiHang(err)
		}
		if err != nil {
			b.t.Errorf("brokertest: close broker: %v", err)
		}
	})
}

// Stats fetches /stats over HTTP, as an operator would.
func (b *Broker) Stats(t testing.TB) broker.Stats {
	t.Helper()
	if b.HTTPAddr == "" {
		t.Fatal("brokertest: Stats: the HTTP listener is off")
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + b.HTTPAddr + "/stats")
	if err != nil {
		t.Fatalf("brokertest: GET /stats: %v", err)
	}
	defer func() {
		if err := resp.Body.Close(); err != nil {
			t.Errorf("brokertest: close /stats body: %v", err)
		}
	}()
	var st broker.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("brokertest: decode /stats: %v", err)
	}
	return st
}

// Lines collects log lines from concurrent writers for a test to wait on.
type Lines struct {
	mu      sync.Mutex // guards lines and changed; taken after testWriter.mu
	lines   []map[string]any
	changed chan struct{} // closed at the next line, for waiters
}

// add records one JSON line (non-JSON lines are ignored).
func (l *Lines) add(line []byte) {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return
	}
	l.mu.Lock()
	l.lines = append(l.lines, m)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	l.mu.Unlock()
}

// All returns the lines seen so far.
func (l *Lines) All() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.lines...)
}

// Wait returns the first line that matches within timeout, or fails the test.
func (l *Lines) Wait(t testing.TB, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	return l.WaitN(t, timeout, 1, match)[0]
}

// WaitN returns the matching lines once n match within timeout, or fails the test.
func (l *Lines) WaitN(t testing.TB, timeout time.Duration, n int, match func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		var got []map[string]any
		for _, m := range l.lines {
			if match(m) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			l.mu.Unlock()
			return got
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("brokertest: %d of %d matching log lines within %v", len(got), n, timeout)
			return nil
		}
	}
}

// testWriter sends log output to t.Log until the test's cleanup stops it
// (t.Log after a test ends panics).
type testWriter struct {
	mu      sync.Mutex // guards stopped and serialises writes; taken before Lines.mu
	t       testing.TB
	also    *Lines
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		if w.also != nil {
			w.also.add(line)
		}
		if !w.stopped {
			w.t.Log(string(line))
		}
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// withoutMochiHang returns the errors err joins but broker.ErrMochiCloseHang, or nil.
func withoutMochiHang(err error) error {
	if errors.Is(err, broker.ErrMochiCloseHang) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			var rest []error
			for _, e := range j.Unwrap() {
				rest = append(rest, withoutMochiHang(e))
			}
			return errors.Join(rest...)
		}
		return nil
	}
	return err
}
