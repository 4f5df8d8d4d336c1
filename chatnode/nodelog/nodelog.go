// Package nodelog is the schema of the chat node's JSON-lines log: the
// event names, the field names and the record the analysis tool decodes.
// It is the contract between the node and the analysis (the wire protocol
// is broker/wire's): renaming a name breaks every log already written.
package nodelog

// Log event names. Chat nodes write one JSON object per line; the "event"
// field holds one of these, and the analysis tool reads exactly these names
// and the fields below.
const (
	EventConnected      = "connected"       // broker, client_id, session_present
	EventConnectionLost = "connection_lost" // error
	EventReconnecting   = "reconnecting"
	EventReconnected    = "reconnected"
	// EventConnectFailed: the first connection attempts fail (logged once;
	// the node keeps trying). EventConnectRefused: the broker refused the
	// CONNECT (bad credentials, not authorized); the node stops.
	EventConnectFailed  = "connect_failed"  // broker, error
	EventConnectRefused = "connect_refused" // broker, error
	EventSubscribed     = "subscribed"      // room (or to for the DM inbox); membership starts
	// EventSubscribeFailed: the broker refused or did not answer a SUBSCRIBE
	// after a (re)connect; the node asks again until it holds every
	// subscription (Mochi refuses a SUBSCRIBE whose packet id equals one of
	// its own unacknowledged deliveries, which happens after a restart).
	EventSubscribeFailed = "subscribe_failed" // error, attempt
	EventUnsubscribed    = "unsubscribed"     // room; membership ends
	EventSent            = "sent"             // room|to, id, seq, sent_ns, ack_ns, ack_us, bytes
	EventSendFailed      = "send_failed"      // room|to, id, seq, error
	EventReceived        = "received"         // room|to, from, id, seq, room_seq, sent_ns, recv_ns, latency_us, bytes, duplicate, via
	EventGap             = "gap"              // room, from, after_seq, missing
	EventMalformed       = "malformed"        // topic, bytes, error
	EventPresence        = "presence"         // user, status
	EventSync            = "sync"             // room, after_seq, count, duration_us
	EventBenchStart      = "bench_start"      // rooms, count, rate, size
	EventBenchEnd        = "bench_end"        // sent, received, duplicates, p50_us, p99_us
	EventFault           = "fault"            // fault, phase (start|end), target; written by fault drills
	EventShutdown        = "shutdown"         // count (publishes unacknowledged at exit, when any)
	// EventClientLog carries a line of the MQTT client library's own log
	// (paho's ERROR and CRITICAL output), so it never mixes into the chat.
	EventClientLog = "client_log"
	// EventScenario opens an evaluation run's drill log: group (the
	// comparisons the run belongs to, comma-separated). The analysis draws
	// one comparison per group.
	EventScenario = "scenario"
)

// Log field names shared by the node and the analysis tool.
const (
	FieldEvent          = "event"
	FieldNode           = "node" // the nick of the node writing the line
	FieldRun            = "run"  // the run label (-run), the analysis' scenario
	FieldTSNS           = "ts_ns"
	FieldBroker         = "broker"
	FieldClientID       = "client_id"
	FieldSessionPresent = "session_present"
	FieldError          = "error"
	FieldRoom           = "room"
	FieldTo             = "to"
	FieldFrom           = "from"
	FieldUser           = "user"
	FieldStatus         = "status"
	FieldTopic          = "topic"
	FieldID             = "id"
	FieldBoot           = "boot"
	FieldSeq            = "seq"
	FieldRoomSeq        = "room_seq"
	FieldAfterSeq       = "after_seq"
	FieldMissing        = "missing"
	FieldSentNS         = "sent_ns"
	FieldRecvNS         = "recv_ns"
	FieldAckNS          = "ack_ns"
	FieldAckUS          = "ack_us"
	// FieldConfirmedBy says what confirmed a sent message when the connection
	// broke while it was in flight: ConfirmedByEcho (the node received its own
	// message back) or ConfirmedByResend (a direct message, which has no
	// echo: paho holds it and resends it after the reconnect; no PUBACK is
	// known).
	FieldConfirmedBy = "confirmed_by"
	FieldLatencyUS   = "latency_us"
	FieldBytes       = "bytes"
	FieldDuplicate   = "duplicate"
	FieldVia         = "via"
	FieldCount       = "count"
	FieldDurationUS  = "duration_us"
	// FieldList marks a sync line about a List request (the user's
	// conversations) rather than one conversation.
	FieldList   = "list"
	FieldFault  = "fault"
	FieldPhase  = "phase"
	FieldTarget = "target"
	FieldGroup  = "group"
)

// Values of FieldConfirmedBy.
const (
	ConfirmedByEcho   = "echo"
	ConfirmedByResend = "resend"
)

// Values of FieldVia: how a message reached the receiver.
const (
	ViaLive = "live" // routed by the broker as it was published
	ViaSync = "sync" // recovered from the broker's room log by catch-up
	// ViaHistory marks a message shown as history (on join or /history):
	// sent before this node joined, so the analysis expects no delivery.
	ViaHistory = "history"
)

// Values of FieldPhase for EventFault.
const (
	PhaseStart = "start"
	PhaseEnd   = "end"
)

// Record is one log line as the analysis tool decodes it. Fields that an
// event does not carry stay at their zero value.
type Record struct {
	Time           string `json:"time"`
	Event          string `json:"event"`
	Node           string `json:"node"`
	Run            string `json:"run"`
	TSNS           int64  `json:"ts_ns"`
	Room           string `json:"room"`
	To             string `json:"to"`
	From           string `json:"from"`
	User           string `json:"user"`
	Status         string `json:"status"`
	ID             string `json:"id"`
	Boot           int64  `json:"boot"`
	Seq            uint64 `json:"seq"`
	RoomSeq        uint64 `json:"room_seq"`
	AfterSeq       uint64 `json:"after_seq"`
	Missing        uint64 `json:"missing"`
	SentNS         int64  `json:"sent_ns"`
	RecvNS         int64  `json:"recv_ns"`
	AckNS          int64  `json:"ack_ns"`
	AckUS          int64  `json:"ack_us"`
	LatencyUS      int64  `json:"latency_us"`
	Bytes          int    `json:"bytes"`
	Duplicate      bool   `json:"duplicate"`
	Via            string `json:"via"`
	Count          int    `json:"count"`
	Fault          string `json:"fault"`
	Phase          string `json:"phase"`
	Target         string `json:"target"`
	Group          string `json:"group"`
	Error          string `json:"error"`
	SessionPresent bool   `json:"session_present"`
}
