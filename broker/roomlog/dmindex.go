package roomlog

import (
	"slices"
	"sync"

	"github.com/distchat/distchat/broker/wire"
)

// dmIndex knows, for every user, the DM conversations they are a party to,
// so a node can catch up on conversations it has never seen: the first
// connect of a new user, a second device, or a lost state directory. Without
// it a node could only ask about conversation keys it already knows, and a
// DM to someone who has never connected would never reach them.
//
// It is rebuilt from the log's conversation keys when the hook starts and
// grows on every append to a new DM conversation; it lives in memory (one
// entry per conversation per party).
type dmIndex struct {
	mu    sync.RWMutex // guards users; taken after no other lock
	users map[string]map[string]struct{}
}

// add records conv under both its parties; a room name is ignored.
func (x *dmIndex) add(conv string) {
	a, b, ok := wire.ParseDMConversation(conv)
	if !ok {
		return
	}
	x.mu.RLock()
	_, known := x.users[a][conv]
	x.mu.RUnlock()
	if known {
		return // the common case: every message of a known conversation
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.users == nil {
		x.users = map[string]map[string]struct{}{}
	}
	for _, u := range []string{a, b} {
		if x.users[u] == nil {
			x.users[u] = map[string]struct{}{}
		}
		x.users[u][conv] = struct{}{}
	}
}

// of returns user's DM conversation keys, sorted.
func (x *dmIndex) of(user string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.users[user]))
	for conv := range x.users[user] {
		out = append(out, conv)
	}
	slices.Sort(out)
	return out
}
