package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// turns orders one broker's appends to a conversation: an append expects
// the conversation's last record, so two appends of this broker racing for
// the same room_seq would make one of them retry for nothing. A turn is
// not a lock on data; it is held across the append's network round trip
// by design, and taking it waits at most the append's timeout.
type turns struct {
	mu     sync.Mutex // guards byConv; taken after no other lock, never held while waiting
	byConv map[string]chan struct{}
}

// take waits for conv's turn, at most timeout or until ctx ends, and
// returns its release.
func (t *turns) take(ctx context.Context, conv string, timeout time.Duration) (func(), error) {
	t.mu.Lock()
	if t.byConv == nil {
		t.byConv = map[string]chan struct{}{}
	}
	ch := t.byConv[conv]
	if ch == nil {
		ch = make(chan struct{}, 1)
		t.byConv[conv] = ch
	}
	t.mu.Unlock()
	release := func() { <-ch }
	select {
	case ch <- struct{}{}:
		return release, nil
	default:
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ch <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, errStopping
	case <-timer.C:
		return nil, fmt.Errorf("room log: %s: no turn to append within %s (the cluster is not acknowledging)", conv, timeout)
	}
}
