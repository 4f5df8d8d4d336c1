package cluster

import (
	"context"
	"testing"
	"time"
)

// Each broker's view reads its own replica: the consumer feeding each
// partition sits on the broker itself.
func TestViewsConsumeTheirOwnReplica(t *testing.T) {
	for _, s := range startLogs(t, 3) {
		for _, p := range s.parts {
			p.consumeMu.Lock()
			run := p.run
			p.consumeMu.Unlock()
			if got := run.cons.CachedInfo().Cluster.Leader; got != s.node {
				t.Errorf("%s's consumer of %s is on %s", s.node, p.name, got)
			}
		}
	}
}

// A view whose consumer is deleted under it starts another and takes the
// records appended afterwards, each once.
func TestViewFollowsOnWhenItsConsumerIsDeleted(t *testing.T) {
	stores := startLogs(t, 3)
	a, b := stores[0], stores[1]
	pa, pb := labPartition(a), labPartition(b)
	appendText(t, a, "first")
	if err := b.waitApplied(pb, a.appliedOf(pa)); err != nil {
		t.Fatalf("b's view before the deletion: %v", err)
	}
	pb.consumeMu.Lock()
	old := pb.run
	pb.consumeMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.js.DeleteConsumer(ctx, pb.name, old.cons.CachedInfo().Name); err != nil {
		t.Fatalf("delete b's consumer: %v", err)
	}
	for _, text := range []string{"second", "third"} {
		appendText(t, a, text)
	}
	if err := b.waitApplied(pb, a.appliedOf(pa)); err != nil {
		t.Fatalf("b's view after its consumer was deleted: %v", err)
	}
	if got := b.view.Last("lab"); got != 3 {
		t.Errorf("b's view of lab ends at room_seq %d, want 3", got)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		pb.consumeMu.Lock()
		now := pb.run
		pb.consumeMu.Unlock()
		if now != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b's deleted consumer was not replaced within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
