package roomlog

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
)

// plainID returns the id a plain-text publish carries in the log.
//
// A distchat node puts an id in every envelope, so a resend after a lost
// PUBACK is recognised by it (storeOnce). A plain text from another client
// (mosquitto_pub -m hello, any app) has none, and a random one per arrival
// stored its resend twice. MQTT marks a resend with DUP and the same packet
// id, so the id is derived from what a resend repeats: the client id, the
// packet id and the payload ("text-<hash>"), with a copy number, because
// the same text may come again as a new message under the same packet id
// (mosquitto_pub sends packet id 1 every time). A publish without DUP takes
// the next free copy number; a DUP one takes the latest copy's, so storeOnce
// routes the stored record again. The copies are looked up in the recent ids
// storeOnce keeps, which are warmed from the log after a restart: a resend
// after a broker restart (field notes F2) is recognised too.
func (h *Hook) plainID(conv, from, client string, packetID uint16, payload []byte, dup bool) (string, error) {
	hash := fnv.New64a()
	var pid [2]byte
	binary.BigEndian.PutUint16(pid[:], packetID)
	for _, part := range [][]byte{[]byte(client), {0}, pid[:], payload} {
		hash.Write(part) //nolint:errcheck // hash.Hash never fails
	}
	base := fmt.Sprintf("text-%016x-", hash.Sum64())
	latest := 0
	for n := 1; ; n++ {
		_, held, err := h.resends.lookup(h.store, conv, from, base+strconv.Itoa(n))
		if err != nil {
			return "", fmt.Errorf("recent ids of %s: %w", conv, err)
		}
		if !held {
			break
		}
		latest = n
	}
	if dup && latest > 0 {
		return base + strconv.Itoa(latest), nil
	}
	return base + strconv.Itoa(latest+1), nil
}
