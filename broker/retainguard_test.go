package broker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// TestRetainedPresenceDuringWildcardSubscribes: clients announce their
// presence (retained) while others subscribe to everyone's (a wildcard), as
// at a reconnect of many nodes at once; under the race detector Mochi alone
// reports a data race here. Every announcement stays retained.
func TestRetainedPresenceDuringWildcardSubscribes(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	const clients, rounds = 6, 15
	var wg sync.WaitGroup
	for i := range clients {
		user := fmt.Sprintf("u%d", i)
		c := mustDial(t, b.URL, clientOpts{id: user, user: user})
		wg.Go(func() {
			for range rounds {
				tok := c.Publish(wire.PresenceTopic(user), 1, true, fmt.Sprintf(`{"v":1,"user":%q,"status":"online"}`, user))
				sub := c.Subscribe(wire.PresenceFilter, 1, nil)
				if !tok.WaitTimeout(wait) || tok.Error() != nil || !sub.WaitTimeout(wait) || sub.Error() != nil {
					t.Errorf("%s: publish %v, subscribe %v", user, tok.Error(), sub.Error())
					return
				}
				if un := c.Unsubscribe(wire.PresenceFilter); !un.WaitTimeout(wait) || un.Error() != nil {
					t.Errorf("%s: unsubscribe %v", user, un.Error())
					return
				}
			}
		})
	}
	wg.Wait()
	got := make(chan msg, clients)
	watcher := mustDial(t, b.URL, clientOpts{id: "watcher", user: "watcher", onMsg: got})
	subscribe(t, watcher, wire.PresenceFilter, got)
	seen := map[string]bool{}
	deadline := time.After(wait)
	for len(seen) < clients {
		select {
		case m := <-got:
			seen[m.topic] = true
		case <-deadline:
			t.Fatalf("retained presence of %d of %d users within %s: %v", len(seen), clients, wait, seen)
		}
	}
}
