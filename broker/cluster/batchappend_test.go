package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/roomlog"
)

// The queue of one conversation's appends: the first append leads, the
// others wait; a leader takes at most maxBatch, oldest first, and hands
// the lead to the oldest still waiting, or leaves the conversation without
// a leader.
func TestAppendQueueLeadsAndHandsOff(t *testing.T) {
	var q appendQueues
	ps := make([]*pendingAppend, maxBatch+2)
	for i := range ps {
		ps[i] = &pendingAppend{done: make(chan appendResult, 1)}
		if lead := q.enqueue("lab", ps[i]); lead != (i == 0) {
			t.Fatalf("append %d: lead = %t, want %t", i, lead, i == 0)
		}
	}
	if !q.enqueue("other", &pendingAppend{done: make(chan appendResult, 1)}) {
		t.Fatal("the first append of another conversation does not lead")
	}
	batch := q.next("lab")
	if len(batch) != maxBatch || batch[0] != ps[0] || batch[maxBatch-1] != ps[maxBatch-1] {
		t.Fatalf("first batch: %d appends, want the %d oldest", len(batch), maxBatch)
	}
	q.handOff("lab")
	select {
	case r := <-ps[maxBatch].done:
		if !r.lead {
			t.Fatalf("the oldest waiting append got %+v, want the lead", r)
		}
	default:
		t.Fatal("the oldest waiting append was not handed the lead")
	}
	if len(ps[maxBatch+1].done) != 0 {
		t.Fatal("a younger waiting append was handed something")
	}
	if rest := q.next("lab"); len(rest) != 2 || rest[0] != ps[maxBatch] {
		t.Fatalf("second batch: %d appends, want the 2 left", len(rest))
	}
	q.handOff("lab")
	if !q.enqueue("lab", &pendingAppend{done: make(chan appendResult, 1)}) {
		t.Fatal("after the last batch the next append does not lead")
	}
}

// chatRecord is a record with the id and sender the dedup id is made of.
func chatRecord(id string) func(uint64) ([]byte, error) {
	return func(seq uint64) ([]byte, error) {
		return fmt.Appendf(nil, `{"id":%q,"from":"alice","room_seq":%d}`, id, seq), nil
	}
}

// appendAll runs appendBatch on records with the given ids and returns
// each append's result.
func appendAll(s *LogStore, ids ...string) []appendResult {
	batch := make([]*pendingAppend, len(ids))
	for i, id := range ids {
		batch[i] = &pendingAppend{timeNS: time.Now().UnixNano(), encode: chatRecord(id), enqueued: time.Now(),
			done: make(chan appendResult, 1)}
	}
	s.appendBatch("lab", batch)
	out := make([]appendResult, len(ids))
	for i, p := range batch {
		out[i] = <-p.done
	}
	return out
}

// Appends waiting together are stored as one atomic batch with
// consecutive room_seqs, also when another broker's record came first
// (the batch learns it and follows it); a batch holding a resend the log
// already has is appended one at a time instead, and the resend is
// recognised as the record it resends. Many appends at once share
// batches.
func TestBatchedAppends(t *testing.T) {
	stores := startLogs(t, 3)
	a, b := stores[0], stores[1]

	got := appendAll(a, "m1", "m2", "m3")
	for i, r := range got {
		if r.err != nil || r.seq != uint64(i+1) {
			t.Fatalf("batch of 3, append %d: %+v, want room_seq %d", i+1, r, i+1)
		}
	}
	batchIDs := map[string]bool{}
	for at := a.Applied() - 2; at <= a.Applied(); at++ {
		m, err := a.stream.GetMsg(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		batchIDs[m.Header.Get(hdrBatchID)] = true
	}
	if len(batchIDs) != 1 || batchIDs[""] {
		t.Fatalf("the 3 records carry batch ids %v, want one", batchIDs)
	}

	// b appends #4; a's knowledge of the room is made stale.
	stale := a.tail("lab")
	if seq, err := b.Append("lab", time.Now().UnixNano(), chatRecord("b1")); err != nil || seq != 4 {
		t.Fatalf("b's append: %d, %v; want room_seq 4", seq, err)
	}
	if err := a.waitApplied(b.Applied()); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.tails["lab"] = stale
	a.mu.Unlock()
	got = appendAll(a, "m4", "m5")
	if got[0].err != nil || got[0].seq != 5 || got[1].err != nil || got[1].seq != 6 {
		t.Fatalf("batch after b's record: %+v, want room_seq 5 and 6", got)
	}

	got = appendAll(a, "m6", "m2", "m7") // m2 is a resend of room_seq 2
	var dup *roomlog.DuplicateError
	if got[0].seq != 7 || !errors.As(got[1].err, &dup) || dup.Seq != 2 || got[2].seq != 8 {
		t.Fatalf("batch with a resend: %+v, want room_seq 7, a duplicate of 2, room_seq 8", got)
	}
	if n := a.atomicFallbacks.Load(); n != 1 {
		t.Errorf("%d batches fell back to single appends, want 1", n)
	}

	if err := b.waitApplied(a.Applied()); err != nil {
		t.Fatal(err)
	}
	recs, err := b.Read("lab", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	if want := "[1 2 3 4 5 6 7 8]"; fmt.Sprint(seqs) != want {
		t.Fatalf("b's view holds room_seqs %v, want %s", seqs, want)
	}

	concurrentAppendsShareBatches(t, a)
}

// concurrentAppendsShareBatches makes many appends to one room at once
// through Append: every one gets its own room_seq, with no gap, in fewer
// rounds than appends, and nobody is left waiting.
func concurrentAppendsShareBatches(t *testing.T, s *LogStore) {
	const appends = 60
	first := s.Applied() + 1
	seqs := make([]uint64, appends)
	var wg sync.WaitGroup
	for i := range appends {
		wg.Go(func() {
			seq, err := s.Append("busy", time.Now().UnixNano(), chatRecord(fmt.Sprint("c", i)))
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			seqs[i] = seq
		})
	}
	wg.Wait()
	seen := make([]bool, appends+1)
	for i, seq := range seqs {
		if seq == 0 || seq > appends || seen[seq] {
			t.Fatalf("append %d got room_seq %d (twice, or outside 1..%d)", i, seq, appends)
		}
		seen[seq] = true
	}
	rounds := map[string]bool{}
	for at := first; at <= s.Applied(); at++ {
		m, err := s.stream.GetMsg(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		round := m.Header.Get(hdrBatchID)
		if round == "" {
			round = "alone #" + m.Header.Get(hdrSeq)
		}
		rounds[round] = true
	}
	t.Logf("%d concurrent appends in %d rounds", appends, len(rounds))
	if len(rounds) >= appends {
		t.Errorf("%d concurrent appends took %d rounds: none shared a batch", appends, len(rounds))
	}
}
