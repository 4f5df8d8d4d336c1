package web

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// tabKey names one tab's device: its user and the tab id the page keeps in
// sessionStorage (so a reload resumes the same device and state dir).
type tabKey struct{ user, id string }

// tabs is the registry of open tabs; it bounds their number.
type tabs struct {
	max, perUser int

	mu      sync.Mutex // guards open and closed; no lock is taken under it
	open    map[tabKey]*tabSlot
	closed  bool
	running sync.WaitGroup
}

// tabSlot is one open tab: cancel ends it, done is closed once its session
// is closed and its state dir released.
type tabSlot struct {
	key    tabKey
	login  *login
	cancel context.CancelFunc
	done   chan struct{}
	// takenOver is set (before cancel) when a newer connection of the same
	// tab replaced this one.
	takenOver atomic.Bool
}

var (
	errTooManyTabs = errors.New("too many open tabs")
	errClosing     = errors.New("the node is shutting down")
)

func newTabs(max, perUser int) *tabs {
	return &tabs{max: max, perUser: perUser, open: map[tabKey]*tabSlot{}}
}

// acquire opens the slot of key for lg. A slot already open for key (the
// same tab reloaded, or a copy of it) is taken over: it is ended and
// acquire waits for its session to close, so the state dir is free.
func (t *tabs) acquire(ctx context.Context, key tabKey, lg *login, cancel context.CancelFunc) (*tabSlot, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, errClosing
		}
		old := t.open[key]
		if old == nil {
			if err := t.checkLimits(key.user); err != nil {
				t.mu.Unlock()
				return nil, err
			}
			slot := &tabSlot{key: key, login: lg, cancel: cancel, done: make(chan struct{})}
			t.open[key] = slot
			t.running.Add(1)
			t.mu.Unlock()
			return slot, nil
		}
		old.takenOver.Store(true)
		t.mu.Unlock()
		old.cancel()
		select {
		case <-old.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the tab's previous connection to close: %w", ctx.Err())
		}
	}
}

// checkLimits is called with t.mu held.
func (t *tabs) checkLimits(user string) error {
	if len(t.open) >= t.max {
		return fmt.Errorf("%w: this node serves %d tabs at most; close one and reload", errTooManyTabs, t.max)
	}
	n := 0
	for k := range t.open {
		if k.user == user {
			n++
		}
	}
	if n >= t.perUser {
		return fmt.Errorf("%w: %s has %d tabs open, the most one user may; close one and reload", errTooManyTabs, user, n)
	}
	return nil
}

// release frees slot once its session is closed.
func (t *tabs) release(slot *tabSlot) {
	t.mu.Lock()
	if t.open[slot.key] == slot {
		delete(t.open, slot.key)
	}
	t.mu.Unlock()
	close(slot.done)
	t.running.Done()
}

// closeAll ends every tab, refuses new ones and waits for the sessions to close.
func (t *tabs) closeAll() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.closeLogin(nil)
	t.running.Wait()
}

// closeLogin ends every tab of lg (sign-out), every tab when lg is nil.
func (t *tabs) closeLogin(lg *login) {
	t.mu.Lock()
	var ends []context.CancelFunc
	for _, s := range t.open {
		if lg == nil || s.login == lg {
			ends = append(ends, s.cancel)
		}
	}
	t.mu.Unlock()
	for _, end := range ends {
		end()
	}
}
