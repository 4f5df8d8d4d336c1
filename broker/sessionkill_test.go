package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// The case of a plain client's persistent session on the broker binary,
// stopped with SIGTERM or killed with SIGKILL: bob's session has received
// and acknowledged two DMs (and the marks, written without a sync at most
// a second apart, say so), goes away, three DMs arrive, the broker stops
// and starts again, two more arrive. After SIGTERM the resumed session gets
// the five once each; after SIGKILL at least once each. Never the two it
// had acknowledged before the marks were taken.
func TestPersistentSessionAcrossBrokerProcessRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the broker binary")
	}
	bin := brokertest.Build(t)
	for _, stop := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(stop, func(t *testing.T) {
			dataDir := t.TempDir()
			br := &brokertest.Process{Bin: bin, Args: []string{"-tcp", "127.0.0.1:0", "-http", "", "-data", dataDir}}
			br.Start(t)
			url := func() string { return "tcp://" + br.Addr }
			got := make(chan msg, 64)
			bob := clientOpts{id: "bob-dev", persistent: true, onMsg: got}
			c := mustDial(t, url(), bob)
			subscribe(t, c, wire.DMFilter("bob"), nil)
			expect(t, got, sendDMs(t, url(), "before-1", "before-2")...)
			conv := wire.DMConversation("alice", "bob")
			waitMarks(t, dataDir, "bob-dev's two DMs acknowledged", func(m marks) bool {
				seqs, ok := m.queued("bob-dev", conv)
				return m.Routed[conv] >= 2 && ok && len(seqs) == 0
			})
			c.Disconnect(100)

			want := sendDMs(t, url(), "dm-1", "dm-2", "dm-3")
			if stop == "SIGTERM" {
				br.Stop(t)
			} else if err := br.Kill(t); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("broker exit: %v, want killed", err)
			}
			br.Start(t)
			want = append(want, sendDMs(t, url(), "dm-4", "dm-5")...)
			mustDial(t, url(), bob)
			if stop == "SIGTERM" {
				expect(t, got, want...)
			} else {
				expectAtLeastOnce(t, got, want...)
			}
		})
	}
}

// expectAtLeastOnce waits for every message of want, in any order and
// allowing repeats of them, and fails on any other.
func expectAtLeastOnce(t *testing.T, ch <-chan msg, want ...msg) {
	t.Helper()
	left := map[msg]bool{}
	wanted := map[msg]bool{}
	for _, w := range want {
		left[w], wanted[w] = true, true
	}
	deadline := time.After(wait)
	for len(left) > 0 {
		select {
		case m := <-ch:
			if !wanted[m] {
				t.Fatalf("unexpected message %+v (still waiting for %v)", m, left)
			}
			delete(left, m)
		case <-deadline:
			t.Fatalf("timed out; missing %v", left)
		}
	}
}
