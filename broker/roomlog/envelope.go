package roomlog

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/distchat/distchat/broker/wire"
)

// envelope decodes a chat payload, or wraps a plain UTF-8 text (from any MQTT
// client, e.g. mosquitto_pub -m hello) into an envelope from the topic's user
// (plain true). The topic is the truth about sender, room and recipient.
func (h *Hook) envelope(payload []byte, t wire.Topic) (e wire.Envelope, plain bool, err error) {
	if len(payload) == 0 {
		return wire.Envelope{}, false, fmt.Errorf("%w: empty payload", wire.ErrMalformed)
	}
	if len(payload) > h.cfg.MaxPayload {
		return wire.Envelope{}, false, fmt.Errorf("%w: %w: %d bytes, the limit is %d", wire.ErrMalformed, errPayloadTooLarge, len(payload), h.cfg.MaxPayload)
	}
	if trimmed := bytes.TrimLeft(payload, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		if e, err = wire.DecodeEnvelope(payload, h.cfg.MaxPayload); err != nil {
			return wire.Envelope{}, false, err
		}
		e.RoomSeq, e.BrokerNS = 0, 0
	} else {
		if !utf8.Valid(payload) {
			return wire.Envelope{}, false, fmt.Errorf("%w: not valid UTF-8", wire.ErrMalformed)
		}
		e = wire.Envelope{V: wire.Version, ID: "text-" + randomID(), SentNS: time.Now().UnixNano(), Body: string(payload)}
		plain = true
	}
	e.From = t.User
	if t.Kind == wire.KindRoom {
		e.Room, e.To = t.Room, ""
	} else {
		e.Room, e.To = "", t.Recipient
	}
	return e, plain, nil
}

// randomID names a plain-text message, which carries no id of its own.
func randomID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprint(time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}
