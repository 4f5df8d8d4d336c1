package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestPartitionOfIsStable: a conversation's partition is a pure function
// of its name and the number of partitions, the same on every broker and
// after every restart (golden values: changing the hash would move every
// conversation to another stream).
func TestPartitionOfIsStable(t *testing.T) {
	tests := []struct {
		conv string
		n    int
		want int
	}{
		{"lobby", 1, 0},
	}
	golden := map[string]int{"lobby": 1, "@alice,bob": 1, "room-1": 2, "lab": 2, "team": 0}
	for conv, want := range golden {
		tests = append(tests, struct {
			conv string
			n    int
			want int
		}{conv, 3, want})
	}
	for _, tt := range tests {
		for range 3 {
			if got := partitionOf(tt.conv, tt.n); got != tt.want {
				t.Fatalf("partitionOf(%q, %d) = %d, want %d", tt.conv, tt.n, got, tt.want)
			}
		}
	}
	spread := map[int]int{}
	for i := range 300 {
		spread[partitionOf("room-"+strconv.Itoa(i), 3)]++
	}
	for p := range 3 {
		if spread[p] < 60 {
			t.Fatalf("300 rooms over 3 partitions: %v; the hash does not spread them", spread)
		}
	}
}

// TestTwoSequencersNeverShareANumber: two brokers that both believe they
// sequence one conversation (a deposed owner that has not learned it yet,
// and its successor) append to it at once, in batches. The expected last
// record on each batch's first message fences them: every record is
// stored once, and room_seq runs 1..n without a gap or a repeat.
func TestTwoSequencersNeverShareANumber(t *testing.T) {
	stores := startLogs(t, 3)
	a, b := stores[0], stores[1]
	a.restamp, b.restamp = nil, nil // each sequences its own appends: two sequencers for one room
	const per = 60
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for _, s := range []*LogStore{a, b} {
		for i := range per {
			wg.Go(func() {
				text := fmt.Appendf(nil, `{"id":"%s-%d","from":"t"}`, s.node, i)
				if _, err := s.Append("lab", time.Now().UnixNano(), func(uint64) ([]byte, error) { return text, nil }); err != nil {
					errs <- fmt.Errorf("append %s: %w", text, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p := labPartition(a)
	if err := a.waitApplied(p, b.appliedOf(labPartition(b))); err != nil {
		t.Fatal(err)
	}
	recs, err := a.Read("lab", 0, 3*per)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for k, r := range recs {
		if r.Seq != uint64(k+1) {
			t.Fatalf("record %d has room_seq %d: a gap or a repeat", k+1, r.Seq)
		}
		if seen[string(r.Data)] {
			t.Fatalf("%s stored twice", r.Data)
		}
		seen[string(r.Data)] = true
	}
	if len(recs) != 2*per {
		t.Fatalf("%d records, want %d", len(recs), 2*per)
	}
}

// TestForwardedAppendsAreSequencedByTheLeader: a broker that does not
// lead the conversation's partition hands its appends to the leader,
// whose sequencer numbers them with its own; both brokers' views hold one
// contiguous sequence, each record as its broker stamped it.
func TestForwardedAppendsAreSequencedByTheLeader(t *testing.T) {
	stores := startLogs(t, 3)
	restamp := func(data []byte, seq uint64) ([]byte, error) {
		return fmt.Appendf(nil, "%s%d}", data[:len(data)-2], seq), nil // `..."n":0}` → `..."n":<seq>}`
	}
	for _, s := range stores {
		s.restamp = restamp
	}
	leader, other := waitForwarding(t, stores)
	// Both brokers write the room: other has seen the leader's clients in
	// it, as its view tells it once the first of their records arrives.
	other.sawOtherWriter("lab", time.Now())
	var wg sync.WaitGroup
	for i := range 40 {
		for _, s := range []*LogStore{leader, other} {
			wg.Go(func() {
				text := fmt.Sprintf("%s-%d", s.node, i)
				stamp := func(seq uint64) ([]byte, error) {
					return fmt.Appendf(nil, `{"id":%q,"from":"t","n":%d}`, text, seq), nil
				}
				if _, err := s.Append("lab", time.Now().UnixNano(), stamp); err != nil {
					t.Errorf("append %s: %v", text, err)
				}
			})
		}
	}
	wg.Wait()
	if other.counts.Forwarded.Load() == 0 {
		t.Fatalf("%s forwarded none of its appends to the leader %s", other.node, leader.node)
	}
	recs, err := other.Read("lab", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range recs {
		if want := fmt.Sprintf(`"n":%d}`, k+1); r.Seq != uint64(k+1) || string(r.Data[len(r.Data)-len(want):]) != want {
			t.Fatalf("record %d: room_seq %d, data %q", k+1, r.Seq, r.Data)
		}
	}
	if len(recs) != 80 {
		t.Fatalf("%d records, want 80", len(recs))
	}
}

// TestSoleWriterAppendsItself: a broker whose clients alone write a
// conversation appends its records itself, fenced, without forwarding
// them to the partition's leader; once its view takes another broker's
// record in the conversation it appends through the leader, for
// soleWriterWindow, and the numbering stays one contiguous sequence
// throughout. (Which broker leads may move while the cluster spreads its
// leaderships, so the test checks the choice against the leader as the
// broker knows it; TestForwardedAppendsAreSequencedByTheLeader forwards.)
func TestSoleWriterAppendsItself(t *testing.T) {
	stores := startLogs(t, 3)
	for _, s := range stores {
		s.restamp = func(data []byte, seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, "%s%d}", data[:len(data)-2], seq), nil
		}
	}
	leader, other := waitForwarding(t, stores)
	appendN := func(s *LogStore, from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			stamp := func(seq uint64) ([]byte, error) {
				return fmt.Appendf(nil, `{"id":"%s-%d","from":"t","n":%d}`, s.node, i, seq), nil
			}
			if seq, err := s.Append("lab", time.Now().UnixNano(), stamp); err != nil || seq != uint64(i) {
				t.Fatalf("append %d on %s: room_seq %d, %v", i, s.node, seq, err)
			}
		}
	}
	part := labPartition(other)
	if got := other.appender("lab", part, time.Now()); got != other.node {
		t.Fatalf("appender of a conversation nobody else writes: %s, want %s itself", got, other.node)
	}
	appendN(other, 1, 5)
	if n := other.counts.Forwarded.Load(); n != 0 || other.counts.Batches.Load() != 5 {
		t.Fatalf("sole writer %s: %d forwarded, %d writes of its own; want 0 and 5", other.node, n, other.counts.Batches.Load())
	}
	appendN(leader, 6, 1)
	if err := other.waitApplied(part, leader.tail("lab").stream); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got, owner := other.appender("lab", part, now), other.ownerOf(part); got != owner {
		t.Fatalf("appender after another broker's record: %s, want the partition's leader %s", got, owner)
	}
	appendN(other, 7, 2)
	if got := other.appender("lab", part, now.Add(soleWriterWindow+time.Second)); got != other.node {
		t.Fatalf("appender after the window: %s, want %s itself", got, other.node)
	}
}

// waitForwarding returns lab's partition leader and another broker once
// the other knows the leader (its watch reads leaders every second) and
// the leader's forward subject reaches it (the routes have settled).
func waitForwarding(t *testing.T, stores []*LogStore) (leader, other *LogStore) {
	t.Helper()
	waitSpread(t, stores)
	leader, other = waitLeader(t, stores, labPartition(stores[0]).name)
	for other.ownerOf(labPartition(other)) != leader.node {
		time.Sleep(10 * time.Millisecond)
	}
	for _, err := other.nc.Request(forwardSubject(leader.node), nil, time.Second); err != nil; _, err = other.nc.Request(forwardSubject(leader.node), nil, time.Second) {
		time.Sleep(10 * time.Millisecond)
	}
	return leader, other
}

// waitSpread waits until every broker leads one partition: each home
// broker takes its partition within seconds of the start, and once every
// broker leads one, the leaderships stand still.
func waitSpread(t *testing.T, stores []*LogStore) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !spreadOver(stores); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the partitions' leaderships did not spread over the brokers within 30s")
		}
	}
}

// spreadOver reports whether each of stores leads one partition.
func spreadOver(stores []*LogStore) bool {
	for _, s := range stores {
		if len(s.Leading()) != 1 {
			return false
		}
	}
	return true
}

// TestHandoverMovesLeadership: a broker asked to stop hands its
// partitions' leaderships over before it leaves, and the others go on
// appending to them. Handover waits at most handoverWait; on a busy
// machine a step-down can take longer, so the test waits for the move
// itself (which, without Handover, never comes: the broker is alive).
func TestHandoverMovesLeadership(t *testing.T) {
	stores := startLogs(t, 3)
	waitSpread(t, stores) // no home broker's request is under way
	leader, other := waitLeader(t, stores, labPartition(stores[0]).name)
	appendText(t, other, "before")
	leader.Handover(context.Background())
	for deadline := time.Now().Add(30 * time.Second); leader.leadsAny(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still leads a partition 30s after Handover", leader.node)
		}
	}
	appendText(t, other, "after")
	if got := other.Last("lab"); got != 2 {
		t.Fatalf("last room_seq %d, want 2", got)
	}
}

// TestLeadersSpreadOverTheBrokers: with as many partitions as brokers,
// each broker ends up leading one (its home partition).
func TestLeadersSpreadOverTheBrokers(t *testing.T) {
	stores := startLogs(t, 3)
	deadline := time.Now().Add(60 * time.Second)
	for {
		led := map[string]int{}
		for _, s := range stores {
			led[s.node] = len(s.Leading()) // what /stats shows as cluster.leading
		}
		if len(led) == 3 && led["b1"] == 1 && led["b2"] == 1 && led["b3"] == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions led per broker: %v; want one each", led)
		}
		time.Sleep(50 * time.Millisecond) // leadership moves on the brokers' own one-second checks
	}
}

// waitLeader waits until one of stores leads stream and returns it and
// another store.
func waitLeader(t *testing.T, stores []*LogStore, stream string) (leader, other *LogStore) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i, s := range stores {
			if s.ns.JetStreamIsStreamLeader(globalAccount, stream) {
				return s, stores[(i+1)%len(stores)]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no leader for %s", stream)
	return nil, nil
}

// TestNextWaitsForTheInterval: a conversation's queue gives a batch at
// once when its drain has written nothing yet, waits out the interval
// after a write unless a full batch waits, and marks the conversation idle
// when nothing waits.
func TestNextWaitsForTheInterval(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name      string
		waiting   int
		now       time.Time
		notBefore time.Time
		wantN     int
		wantWait  time.Duration
	}{
		{"first batch at once", 3, t0, time.Time{}, 3, 0},
		{"within the interval", 3, t0, t0.Add(2 * time.Millisecond), 0, 2 * time.Millisecond},
		{"interval over", 3, t0.Add(2 * time.Millisecond), t0.Add(2 * time.Millisecond), 3, 0},
		{"a full batch goes at once", maxBatch + 1, t0, t0.Add(time.Second), maxBatch, 0},
		{"nothing waits", 0, t0, t0.Add(time.Second), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q sequencer
			for range tt.waiting {
				q.enqueue("c", &pendingAppend{enqueued: t0})
			}
			batch, wait := q.next("c", tt.now, tt.notBefore)
			if len(batch) != tt.wantN || wait != tt.wantWait {
				t.Fatalf("next: %d appends, wait %s; want %d, %s", len(batch), wait, tt.wantN, tt.wantWait)
			}
			if tt.waiting == 0 && q.busy["c"] {
				t.Fatal("an empty queue stays busy")
			}
		})
	}
}
