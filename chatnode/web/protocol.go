package web

import (
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/session"
)

// The WebSocket carries one JSON object per frame, its type in "t".
// docs/web.md lists them.

// Frame types from the node to the page.
const (
	frameHello    = "hello"    // the tab's identity and rooms
	frameMsg      = "msg"      // one chat message, once, in conversation order
	frameStatus   = "status"   // the broker connection: connected / reconnecting
	framePresence = "presence" // who is online, overall and per room
	frameAck      = "ack"      // a send was handed to the session (id, queued)
	frameDone     = "done"     // the broker acknowledged a send
	frameError    = "error"    // one request failed; text says why
	frameInfo     = "info"     // a notice for the user
	frameFatal    = "fatal"    // the tab ends; code says whether to reconnect
)

// Frame types from the page to the node.
const (
	reqSend  = "send"
	reqJoin  = "join"
	reqLeave = "leave"
)

// outFrame is a frame to the page; unused fields are left out.
type outFrame struct {
	T       string              `json:"t"`
	User    string              `json:"user,omitempty"`
	Device  string              `json:"device,omitempty"`
	Rooms   []string            `json:"rooms,omitempty"`
	MaxBody int                 `json:"max_body,omitempty"`
	Msg     *msgFrame           `json:"msg,omitempty"`
	State   string              `json:"state,omitempty"`
	Text    string              `json:"text,omitempty"`
	Code    string              `json:"code,omitempty"`
	Ref     int64               `json:"ref,omitempty"`
	ID      string              `json:"id,omitempty"`
	Queued  bool                `json:"queued,omitempty"`
	Online  []string            `json:"online,omitempty"`
	InRoom  map[string][]string `json:"in_room,omitempty"`
}

// msgFrame is a chat message as the page shows it. Conv is "#room" or
// "@peer"; the page keeps one list per Conv, ordered by RoomSeq (then SentNS).
type msgFrame struct {
	ID      string `json:"id"`
	Conv    string `json:"conv"`
	From    string `json:"from"`
	Kind    string `json:"kind,omitempty"`
	Body    string `json:"body"`
	RoomSeq uint64 `json:"room_seq,omitempty"`
	SentNS  int64  `json:"sent_ns"`
	Via     string `json:"via"`
}

// inFrame is a request from the page.
type inFrame struct {
	T    string `json:"t"`
	Ref  int64  `json:"ref"`
	Conv string `json:"conv"`
	Kind string `json:"kind"`
	Body string `json:"body"`
	Room string `json:"room"`
}

// viaSent marks the sender's own direct message, shown once the broker has
// it (direct messages do not come back to their sender).
const viaSent = "sent"

// newMsgFrame is session message m as the page of user me shows it.
func newMsgFrame(me string, m session.Message) *msgFrame {
	f := &msgFrame{ID: m.Env.ID, Conv: "#" + m.Env.Room, From: m.Env.From, Body: m.Env.Body,
		RoomSeq: m.Env.RoomSeq, SentNS: m.Env.SentNS, Via: m.Via}
	switch {
	case m.Private && m.Env.From == me:
		f.Conv = "@" + m.Env.To
	case m.Private:
		f.Conv = "@" + m.Env.From
	}
	if m.Env.Kind == wire.KindAction {
		f.Kind = wire.KindAction
	}
	return f
}
