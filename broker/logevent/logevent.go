// Package logevent names the broker's log events: the value of the "event"
// field in each JSON line the broker and its room log write. Operators filter
// and alert on these names, and tests assert them, so they live here in one
// list; renaming one is a breaking change for whoever reads the logs.
package logevent

// Lifecycle of the broker process.
const (
	Started       = "started"        // listeners are open: tcp, ws, http
	Stopped       = "stopped"        // every listener and hook closed
	Shutdown      = "shutdown"       // SIGINT/SIGTERM received
	NoPersistence = "no_persistence" // no data directory: state lives in memory
	RoomLogOff    = "room_log_off"   // hop-by-hop QoS 1 only
	OpenMode      = "open_mode"      // no users file: anonymous development mode
	FileLimitLow  = "file_limit_low" // the open-file limit is below the connection limits
)

// The TCP listener and its connection limits.
const (
	AcceptFailed      = "accept_failed"      // accept returned an error; retried after back-off
	AcceptRecovered   = "accept_recovered"   // accept works again after failures
	AcceptStopped     = "accept_stopped"     // the listener closed for good
	ConnectionRefused = "connection_refused" // a connection limit (per IP or listener) was hit
	ConnectTimeout    = "connect_timeout"    // no CONNECT within the deadline
)

// Clients: sessions, identity and ACLs.
const (
	ClientConnected            = "client_connected"
	ClientDisconnected         = "client_disconnected"
	Subscribed                 = "subscribed"
	Unsubscribed               = "unsubscribed"
	ConnectRefused             = "connect_refused" // CONNACK with a refusal code
	AuthFailed                 = "auth_failed"     // credentials or client id refused
	ACLDenied                  = "acl_denied"      // a publish or subscribe outside the user's rights
	WillRefused                = "will_refused"    // a Will on a topic the user may not publish
	MessageDropped             = "message_dropped" // Mochi dropped a delivery (counted)
	SlowSubscriberDisconnected = "slow_subscriber_disconnected"
)

// The room log.
const (
	RoomLogOpened       = "room_log_opened"
	RoomLogNotCompacted = "room_log_not_compacted"
	RoomLogTornTail     = "room_log_torn_tail" // recovery cut a partly written record
	MessageInvalid      = "message_invalid"    // acknowledged and discarded: not a chat envelope
	MessageRefused      = "message_refused"    // a limit refused it: acknowledged and discarded (MQTT 5: a reason code)
	AppendFailed        = "append_failed"      // the store failed: no PUBACK, the client resends
	Sync                = "sync"               // a catch-up request served or refused
	SyncThrottled       = "sync_throttled"     // catch-up replies held back by the byte budget
)

// Persistent sessions and the room log (broker/sessionmarks.go).
const (
	SessionsRequeued   = "sessions_requeued"    // at start: chat messages requeued from the room log to persistent sessions
	SessionMarksFailed = "session_marks_failed" // the session marks could not be read or written; recovery requeues more
)

// Cluster mode (broker/cluster).
const (
	ClusterReady       = "cluster_ready"         // the embedded NATS server joined its routes; JetStream is up
	ClusterStopped     = "cluster_stopped"       // the embedded NATS server shut down
	RoomLogFollowError = "room_log_follow_error" // following the replicated stream failed; it resumes
	ClusterLeader      = "cluster_leader"        // a partition's leadership asked for or handed over
	SessionMoved       = "session_moved"         // an offline session dropped: its client established one on another broker
)
