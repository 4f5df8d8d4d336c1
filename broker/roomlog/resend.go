package roomlog

import (
	"encoding/json"
	"sync"
)

// recentIDs is how many message ids per conversation the hook remembers to
// recognise a resend. A publisher resends at most what it had in flight (the
// node's window, 64 by default, and Mochi's receive maximum, 1024), so this
// covers every resend with room to spare.
const recentIDs = 2048

// resends recognises a message the log already holds: a publisher whose
// PUBACK was lost (the broker restarted, the connection broke) sends the same
// message again, and stamping it twice would give one message two room
// sequence numbers. The hook stores it once and routes the stored record.
type resends struct {
	mu    sync.Mutex
	convs map[string]*idRing
}

// idRing maps the newest message ids of one conversation (sender + id) to
// their sequence numbers, forgetting the oldest beyond recentIDs.
type idRing struct {
	seqs  map[string]uint64
	order []string
	next  int
}

func idKey(from, id string) string { return from + "\x00" + id }

// lookup returns the sequence number stored for from/id in conv, warming the
// conversation's ring from the store's newest records the first time (after a
// restart the resends of the previous run's publishers come first). The
// warm-up reads the store outside the lock, so publishers to other
// conversations do not wait for it.
func (r *resends) lookup(st Store, conv, from, id string) (uint64, bool, error) {
	r.mu.Lock()
	ring := r.convs[conv]
	r.mu.Unlock()
	if ring == nil {
		warm, err := warmRing(st, conv)
		if err != nil {
			return 0, false, err
		}
		r.mu.Lock()
		if ring = r.convs[conv]; ring == nil {
			if r.convs == nil {
				r.convs = map[string]*idRing{}
			}
			ring = warm
			r.convs[conv] = ring
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seq, ok := ring.seqs[idKey(from, id)]
	return seq, ok, nil
}

// remember records that from/id was stored in conv at seq.
func (r *resends) remember(conv, from, id string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ring := r.convs[conv]; ring != nil {
		ring.add(idKey(from, id), seq)
	}
}

// warmRing builds a ring from the conversation's newest records.
func warmRing(st Store, conv string) (*idRing, error) {
	recs, err := st.Newest(conv, recentIDs)
	if err != nil {
		return nil, err
	}
	ring := &idRing{seqs: make(map[string]uint64, len(recs)), order: make([]string, 0, recentIDs)}
	for _, rec := range recs {
		var e struct{ ID, From string }
		if json.Unmarshal(rec.Data, &e) == nil && e.ID != "" {
			ring.add(idKey(e.From, e.ID), rec.Seq)
		}
	}
	return ring, nil
}

func (g *idRing) add(key string, seq uint64) {
	if len(g.order) < recentIDs {
		g.order = append(g.order, key)
	} else {
		delete(g.seqs, g.order[g.next])
		g.order[g.next] = key
		g.next = (g.next + 1) % recentIDs
	}
	g.seqs[key] = seq
}
