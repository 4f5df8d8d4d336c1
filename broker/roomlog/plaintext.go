package roomlog

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// plainIDs gives a resent plain-text publish the id of its first copy.
//
// A distchat node puts an id in every envelope, so a resend after a lost
// PUBACK is recognised by it (storeOnce). A plain text from another client
// (mosquitto_pub -m hello, any app) gets a random id from the broker, a new
// one each time it arrives, so its resend was stored twice. MQTT marks a
// resend with DUP and the same packet id, so plainIDs remembers, per user,
// client id and packet id, the last publish's payload hash and id for
// plainTTL; a DUP publish with the same payload within that time gets that id
// back and storeOnce routes the stored record again.
//
// DUP only says the client may have sent the message before, and a client
// may reuse a packet id as soon as it has its PUBACK: a new identical
// message under a reused packet id, lost on its way in and resent, would be
// taken for the earlier copy and lost. So a client seen reusing a packet id
// within plainTTL (most clients cycle through 65,535 ids; some use one id
// for every message) gets no matching from then on: its resends may be shown
// twice, never lost. What remains is a loss only if such a client's very first
// quick reuse is of the same text and is lost on its way in. The table lives
// in memory and holds at most plainCap publishes: a resend after a broker
// restart, or after more than plainCap other plain-text publishes within the
// minute, is stored again (shown twice, never lost).
type plainIDs struct {
	mu   sync.Mutex
	seed maphash.Seed
	now  func() time.Time
	ids  map[plainKey]plainID
	// clients seen reusing a packet id within plainTTL: never matched
	reusers map[[2]string]bool
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

// idFor returns the id a plain-text publish from user's client carries: its
// first copy's for a resend of a recent one, else fresh, which it remembers.
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

// makeRoom forgets the publishes older than plainTTL, and if the table is
// still full (more than plainCap plain-text publishes within a minute), a
// quarter of it, the oldest first. Callers hold p.mu.
func (p *plainIDs) makeRoom(now time.Time) {
	for k, v := range p.ids {
		if now.Sub(v.at) >= plainTTL {
			delete(p.ids, k)
		}
	}
	if len(p.ids) < plainCap {
		return
	}
	type aged struct {
		k  plainKey
		at time.Time
	}
	all := make([]aged, 0, len(p.ids))
	for k, v := range p.ids {
		all = append(all, aged{k, v.at})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
	for _, a := range all[:len(all)/4] {
		delete(p.ids, a.k)
	}
}
