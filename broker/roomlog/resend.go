package roomlog

import (
	"encoding/json"
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// recentIDs is how many message ids per conversation the hook remembers to
// recognise a resend: more than Mochi's receive maximum (1024) in flight.
const recentIDs = 2048

// resends recognises a message resent after a lost PUBACK, so it does not
// get two sequence numbers: the hook routes the stored record again.
type resends struct {
	mu    sync.Mutex // guards convs and every ring in it; taken after no other lock
	convs map[string]*idRing
}

// idRing maps a conversation's newest recentIDs sender+ids to their seqs.
type idRing struct {
	seqs  map[string]uint64
	order []string
	next  int
}

func idKey(from, id string) string { return from + "\x00" + id }

// lookup returns the sequence number stored for from/id in conv, first
// warming conv's ring from its newest records (outside the lock): a
// restart's resends come first.
func (r *resends) lookup(st Store, conv, from, id string) (uint64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.convs[conv]
	if ring == nil {
		r.mu.Unlock()
		warm, err := warmRing(st, conv)
		r.mu.Lock()
		if err != nil {
			return 0, false, err
		}
		if ring = r.convs[conv]; ring == nil {
			ring, made(&r.convs)[conv] = warm, warm
		}
	}
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

// plainIDs gives a resent plain text (mosquitto_pub -m hello, a new random id
// each time) its first copy's id: per user, client and packet id it keeps the
// last payload hash and id for plainTTL, for a DUP of the same payload. A
// client may reuse a packet id once it has its PUBACK, so an identical new
// message under it would be taken for the earlier copy and lost: a client
// seen reusing one within plainTTL is never matched again (shown twice,
// never lost). Past plainCap publishes, or after a restart, one is stored again.
type plainIDs struct {
	mu      sync.Mutex // guards ids and reusers; taken after no other lock
	seed    maphash.Seed
	now     func() time.Time
	ids     map[plainKey]plainID
	reusers map[[2]string]bool // clients seen reusing a packet id within plainTTL
}

type plainKey struct {
	user, client string
	packetID     uint16
}

type plainID struct {
	hash uint64
	id   string
	at   time.Time
}

const (
	// plainCap bounds the publishes remembered (about 100 bytes each).
	plainCap = 1 << 14
	// plainTTL is how long a resend is matched with its first copy.
	plainTTL = time.Minute
)

func newPlainIDs() *plainIDs {
	return &plainIDs{seed: maphash.MakeSeed(), now: time.Now, ids: map[plainKey]plainID{}, reusers: map[[2]string]bool{}}
}

// idFor returns a plain-text publish's id: its first copy's for a resend, else fresh.
func (p *plainIDs) idFor(user, client string, pk packets.Packet, fresh string) string {
	if pk.PacketID == 0 {
		return fresh // QoS 0: never resent
	}
	key := plainKey{user, client, pk.PacketID}
	h := maphash.Bytes(p.seed, pk.Payload)
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	who := [2]string{user, client}
	prev, seen := p.ids[key]
	recent := seen && now.Sub(prev.at) < plainTTL
	if recent && !pk.FixedHeader.Dup && len(p.reusers) < plainCap {
		p.reusers[who] = true // a new message under a packet id still remembered
	}
	if recent && pk.FixedHeader.Dup && prev.hash == h && !p.reusers[who] {
		return prev.id
	}
	if !seen && len(p.ids) >= plainCap {
		p.makeRoom(now)
	}
	p.ids[key] = plainID{hash: h, id: fresh, at: now}
	return fresh
}

// makeRoom forgets publishes past plainTTL, then if full the oldest quarter. Holds p.mu.
func (p *plainIDs) makeRoom(now time.Time) {
	for k, v := range p.ids {
		if now.Sub(v.at) >= plainTTL {
			delete(p.ids, k)
		}
	}
	if len(p.ids) < plainCap {
		return
	}
	keys := slices.Collect(maps.Keys(p.ids))
	slices.SortFunc(keys, func(a, b plainKey) int { return p.ids[a].at.Compare(p.ids[b].at) })
	for _, k := range keys[:len(keys)/4] {
		delete(p.ids, k)
	}
}
