package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Version is the message format version; decoders refuse others rather than guess.
const Version = 1

// MaxPayloadBytes is the default bound of one chat message, which nodes do
// not send past and the room log does not store: one message cannot fill
// another user's memory or the log.
const MaxPayloadBytes = 64 * 1024

// Envelope kinds. An empty Kind is an ordinary message.
const (
	KindMessage = ""
	KindAction  = "me"
)

// Envelope is one chat message on chat/rooms/... and chat/dm/..., as JSON.
// The room log adds RoomSeq and BrokerNS to the sender's fields before
// routing: receivers get one order per conversation and see its gaps.
type Envelope struct {
	V    int    `json:"v"`
	ID   string `json:"id"`             // unique message id; duplicates are detected on it
	Kind string `json:"kind,omitempty"` // "" message, "me" action
	Room string `json:"room,omitempty"` // room messages
	To   string `json:"to,omitempty"`   // direct messages: the recipient
	From string `json:"from"`
	Boot int64  `json:"boot,omitempty"` // the sending node's start (Unix ns), so Seq restarts safely
	Seq  uint64 `json:"seq,omitempty"`  // the sender's own, within Boot, from 1, without gaps
	// SentNS is the send time in Unix nanoseconds (in load runs the
	// scheduled one, so latency includes any delay in sending).
	SentNS   int64  `json:"sent_ns"`
	Body     string `json:"body"`
	Pad      string `json:"pad,omitempty"`       // fills load messages up to a size; never shown
	RoomSeq  uint64 `json:"room_seq,omitempty"`  // the room log's sequence number (0 without one, e.g. Mosquitto)
	BrokerNS int64  `json:"broker_ns,omitempty"` // when the room log stored it (Unix ns)
}

// ErrMalformed is wrapped by every decoding error for chat payloads.
var ErrMalformed = errors.New("malformed payload")

// Encode returns what json.Marshal writes for e, byte for byte; the error is always nil.
func (e Envelope) Encode() ([]byte, error) {
	// Keys and numbers take at most about 250 bytes; strings rarely grow when escaped.
	n := 256 + len(e.ID) + len(e.Kind) + len(e.Room) + len(e.To) + len(e.From) + len(e.Body) + len(e.Pad)
	return appendEnvelope(make([]byte, 0, n), &e), nil
}

// padField is what a Pad adds to an encoded envelope besides its bytes.
const padField = `,"pad":""`

// EncodePadded encodes e padded to size bytes (load messages), or unpadded
// if as long already. It sets e.Pad, so e is what was sent.
func (e *Envelope) EncodePadded(size int) ([]byte, error) {
	e.Pad = ""
	payload, _ := e.Encode() // never fails
	if size > len(payload)+len(padField) {
		e.Pad = strings.Repeat("x", size-len(payload)-len(padField))
		return e.Encode()
	}
	return payload, nil
}

// Validate checks the fields every envelope must have.
func (e Envelope) Validate() error {
	switch {
	case e.V != Version:
		return fmt.Errorf("%w: envelope version %d, want %d", ErrMalformed, e.V, Version)
	case e.ID == "" || len(e.ID) > 128:
		return fmt.Errorf("%w: envelope id missing or longer than 128 bytes", ErrMalformed)
	case e.Kind != KindMessage && e.Kind != KindAction:
		return fmt.Errorf("%w: unknown envelope kind %q", ErrMalformed, e.Kind)
	case !utf8.ValidString(e.Body):
		return fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	for _, f := range [...]struct{ field, kind, name string }{{"from", "user", e.From}, {"room", "room", e.Room}, {"to", "user", e.To}} {
		if f.name == "" && f.field != "from" {
			continue // room and to are optional
		}
		if err := ValidateName(f.kind, f.name); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformed, f.field, err)
		}
	}
	return nil
}

// DecodeEnvelope parses and validates a payload of at most limit (<= 0: MaxPayloadBytes) bytes.
func DecodeEnvelope(payload []byte, limit int) (Envelope, error) {
	if limit <= 0 {
		limit = MaxPayloadBytes
	}
	if len(payload) > limit {
		return Envelope{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(payload), limit)
	}
	if !utf8.Valid(payload) {
		return Envelope{}, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	var e Envelope
	if err := unmarshalEnvelope(payload, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// Presence states.
const (
	Online  = "online"
	Offline = "offline"
)

// Presence is the retained payload on chat/presence/<user>; the Last Will says offline.
type Presence struct {
	V      int      `json:"v"`
	User   string   `json:"user"`
	Status string   `json:"status"`
	Rooms  []string `json:"rooms,omitempty"`
	AtNS   int64    `json:"at_ns"`
	// Device is the publishing device's client id (a user may be online on
	// several): one that sees another report its user offline says online again.
	Device  string `json:"device,omitempty"`
	Devices int    `json:"devices,omitempty"` // from the broker: devices online; the user is while any is
}

// DecodePresence parses and validates a presence payload.
func DecodePresence(payload []byte) (Presence, error) {
	var p Presence
	if err := json.Unmarshal(payload, &p); err != nil {
		return Presence{}, fmt.Errorf("%w: presence: %w", ErrMalformed, err)
	}
	if p.V != Version || (p.Status != Online && p.Status != Offline) {
		return Presence{}, fmt.Errorf("%w: presence version %d status %q", ErrMalformed, p.V, p.Status)
	}
	if err := ValidateName("user", p.User); err != nil {
		return Presence{}, fmt.Errorf("%w: presence: %w", ErrMalformed, err)
	}
	return p, nil
}

// SyncRequest asks the room log, on chat/sync/<user>, for a conversation's
// messages after AfterSeq, answered on chat/inbox/<user> in pages.
type SyncRequest struct {
	V        int    `json:"v"`
	ReqID    string `json:"req_id"`
	Conv     string `json:"conv"` // a room name or a DM conversation key (see DMConversation)
	AfterSeq uint64 `json:"after_seq"`
	// Limit bounds the page; 0 lets the broker choose. Last > 0 asks for the
	// newest Last messages instead (history on join); AfterSeq is then ignored.
	Limit int `json:"limit,omitempty"`
	Last  int `json:"last,omitempty"`
	// List asks instead for the user's DM conversations and the Rooms it may
	// read, with last seqs (SyncReply.Convs), after Conv if set (a reply with
	// More). A broker without listing answers with an error (Conv is empty).
	List  bool     `json:"list,omitempty"`
	Rooms []string `json:"rooms,omitempty"`
}

// ConvInfo is one conversation in the answer to a List request.
type ConvInfo struct {
	Conv    string `json:"conv"`
	LastSeq uint64 `json:"last_seq"`
}

// SyncReply is one page of a catch-up answer on chat/inbox/<user>.
type SyncReply struct {
	V        int        `json:"v"`
	ReqID    string     `json:"req_id"`
	Conv     string     `json:"conv"`
	Messages []Envelope `json:"messages"`
	LastSeq  uint64     `json:"last_seq"` // the log's highest seq when the page was read; More: pages follow
	More     bool       `json:"more"`
	// JoinedSeq, answering Last, is the last seq when the client's
	// subscription began: all after it reaches the client, so a new node
	// starts there, not at LastSeq, which may count messages on their way.
	// Nil when unknown (older broker, no subscription).
	JoinedSeq *uint64    `json:"joined_seq,omitempty"`
	Convs     []ConvInfo `json:"convs,omitempty"` // answers a List request, in key order; More: the listing continues
	Error     string     `json:"error,omitempty"` // set, with no Messages, when the request was refused
}
