package roomlog

import (
	"fmt"

	"github.com/distchat/distchat/broker/wire"
)

// Restamp lays out a stamped record again with room_seq seq: in cluster
// mode a broker that does not sequence a conversation sends the record,
// stamped as number 0, to the broker that does, which numbers it with
// this. The result is byte for byte what the publishing broker's own
// stamping gives for seq, so both route the same record.
func Restamp(data []byte, seq uint64) ([]byte, error) {
	e, err := wire.DecodeEnvelope(data, len(data)) // the size was checked where the record was stamped
	if err != nil {
		return nil, fmt.Errorf("restamp record #%d: %w", seq, err)
	}
	e.RoomSeq = seq
	return e.Encode()
}
