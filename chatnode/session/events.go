package session

import (
	"github.com/distchat/distchat/broker/wire"
)

// Event is something the session reports to its user: a Message, Status,
// PresenceChange, Info or ConnectFailed.
type Event interface{ isEvent() }

// Message is a chat message ready to show, in display order.
type Message struct {
	Env     wire.Envelope
	Conv    string // the room name or the DM conversation key
	Private bool   // a direct message
	Via     string // nodelog.ViaLive, nodelog.ViaSync or nodelog.ViaHistory
	RecvNS  int64
	Bytes   int
}

// Status reports a change of the connection.
type Status struct {
	Connected    bool
	Reconnecting bool
	Err          error
	Broker       string // the broker connected to (Connected) or lost (Err set)
}

// PresenceChange reports another user's presence as it changed. Retained is
// true for the state the broker hands out on subscribe (not news).
type PresenceChange struct {
	Presence     wire.Presence
	Joined, Left []string
	Retained     bool
}

// Info is a one-line notice for the user (no room log, sent after reconnect…).
type Info struct{ Text string }

func (Message) isEvent()        {}
func (Status) isEvent()         {}
func (PresenceChange) isEvent() {}
func (Info) isEvent()           {}

// Options are the session's hooks.
type Options struct {
	// OnEvent receives every event, from one goroutine at a time for
	// messages and presence. It must not block for long.
	OnEvent func(Event)
	// Boot overrides the boot id (process start, Unix ns); 0 uses time.Now.
	Boot int64

	// Record says what records a delivery for good, so a node killed and
	// restarted on its state dir shows nothing twice and misses nothing.
	Record RecordMode
	// FlushLog writes the log's buffered lines to cfg.Log (RecordLog).
	FlushLog func() error
	clock    clock // the pipeline's time source (tests drive it); nil is the wall clock
}

// RecordMode says what records a delivery for good, together with the
// conversation's position in the state dir (positions.go).
type RecordMode int

const (
	// RecordState keeps the positions in the state file, written every
	// 200 ms: after a kill -9 the last moments may be shown again.
	RecordState RecordMode = iota
	// RecordJournal makes the Message event the record: OnEvent returns
	// once the message is shown, and its position is then appended to a
	// journal in the state dir (a small write per delivery).
	RecordJournal
	// RecordLog makes the "received" lines of cfg.Log the record: the
	// positions are saved only after the lines they cover are flushed
	// (Options.FlushLog), and recovered from later lines. No write per
	// delivery.
	RecordLog
)
