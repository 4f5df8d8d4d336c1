package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Broker configures a broker node. The zero-config default is a local
// development broker: loopback only, anonymous clients allowed, identities not
// enforced, nothing persisted — like Mosquitto 2's local-only mode.
type Broker struct {
	// TCP is the MQTT listener address. Default 127.0.0.1:1883 (loopback only).
	TCP string `yaml:"tcp"`
	// WS is the MQTT-over-WebSocket listener address; empty turns it off.
	WS string `yaml:"ws"`
	// HTTP serves /healthz and /stats; empty turns it off. Default 127.0.0.1:8080.
	HTTP string `yaml:"http"`
	// Pprof also serves Go's profiler on HTTP under /debug/pprof/, for
	// finding where the broker spends its time. Off by default: it lets
	// anyone who reaches the HTTP listener read the broker's internals.
	Pprof bool `yaml:"pprof"`
	// DataDir holds sessions, retained messages and the room log. Empty keeps
	// everything in memory (a warning is logged): a restart forgets it all.
	DataDir string `yaml:"data_dir"`
	// Storage is the session store in DataDir. Only "pebble" is built in
	// (Mochi's bolt is deprecated and badger is not linked).
	Storage string `yaml:"storage"`
	// Durability is what an acknowledged chat message survives. The room log
	// is the only durable write on a message's path: the session store keeps
	// clients, subscriptions and retained messages without a sync per write
	// and never stores chat messages in flight. DurabilityProcess (default)
	// appends each message to the operating system before its PUBACK, so it
	// survives kill -9 of the broker; DurabilityMachine also fsyncs before
	// the PUBACK, one fsync for every append waiting (group commit), so it
	// survives a power loss.
	Durability Durability `yaml:"durability"`
	LogFormat  string     `yaml:"log_format"` // json (default) or text
	LogLevel   string     `yaml:"log_level"`  // debug, info (default), warn, error
	Limits     Limits     `yaml:"limits"`
	Auth       Auth       `yaml:"auth"`
	// RoomLog is the durable, sequenced log of every room (zero loss end to end).
	RoomLog RoomLog `yaml:"room_log"`
	// Cluster, when its node is set, makes this broker one of several
	// sharing a replicated room log (docs/cluster.md).
	Cluster Cluster `yaml:"cluster"`
}

// Limits are Mochi's capabilities that decide when messages are dropped or
// expire. Mochi's defaults expire offline messages after 24 h and drop
// silently at 8192 in-flight messages; distchat sets them on purpose and
// counts every drop.
type Limits struct {
	// MaxInflight is the number of unacknowledged QoS 1 messages one client
	// may hold; beyond it Mochi drops messages for that client (counted).
	// At most 65535 (Mochi keeps it in a uint16).
	MaxInflight int `yaml:"max_inflight"`
	// MaxInflightBytes bounds the payload and topic bytes of one client's
	// unacknowledged deliveries (0: no bound); MaxInflightBytesTotal those
	// of all clients together. A count of large messages is a lot of memory
	// (max_inflight × max_packet_size is 2 GiB by default); over a bound a
	// delivery is dropped (counted as inflight_bytes) and the client's node
	// repairs it from the room log once its acknowledgements free room.
	MaxInflightBytes      int64 `yaml:"max_inflight_bytes"`
	MaxInflightBytesTotal int64 `yaml:"max_inflight_bytes_total"`
	// MaxClientWritesPending bounds a client's outbound queue (drops
	// counted). At most 2147483647 (an int32 in Mochi).
	MaxClientWritesPending int `yaml:"max_client_writes_pending"`
	// ReceiveMaximum is how many QoS 1 publishes a client may have unacknowledged towards the broker.
	ReceiveMaximum int `yaml:"receive_maximum"`
	// MaxPacketSize is the largest MQTT packet accepted, in bytes.
	MaxPacketSize int `yaml:"max_packet_size"`
	// WriteTimeout bounds one socket write to a client. Mochi holds a
	// client's lock while it writes, so one subscriber that stops reading (a
	// partitioned host) blocks every publisher to its topics until its
	// keep-alive expires (docs/mochi-and-paho.md); past this timeout the broker
	// closes that connection instead. Its session keeps the messages and the
	// room log has them all.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MessageExpiry is how long offline and retained messages are kept.
	MessageExpiry time.Duration `yaml:"message_expiry"`
	// SessionExpiry is how long a persistent session outlives its connection.
	SessionExpiry time.Duration `yaml:"session_expiry"`
	// ConnectTimeout closes a TCP connection that has not sent its CONNECT
	// packet by then: otherwise idle sockets pile up until file descriptors
	// run out and accept fails for everyone.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConnections bounds the TCP listener's open connections, and
	// MaxConnectionsPerIP those from one remote address; beyond them a new
	// connection is closed at accept (counted, logged). 0 means unlimited.
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxKeepAlive is the longest keep-alive an MQTT 5 client gets: one
	// asking for more, or for none (0), is told this one in its CONNACK
	// (Server Keep Alive) and is disconnected after 1.5 times it of
	// silence, so a dead connection does not hold its session forever.
	// MQTT 3.1.1 has no way to say so and keeps its own. Whole seconds, at
	// most 65535s; 0 turns it off.
	MaxKeepAlive time.Duration `yaml:"max_keep_alive"`
}

// Auth decides who may connect and what they may do.
type Auth struct {
	// UsersFile is a YAML file of users (see Users). With no users at all the
	// broker runs in open development mode and enforces nothing.
	UsersFile string `yaml:"users_file"`
	// Users listed inline, added to those of UsersFile.
	Users []User `yaml:"users"`
	// Anonymous lets clients without credentials in, read-only (rooms and
	// presence): an operator's mosquitto_sub. Only meaningful with users.
	Anonymous bool `yaml:"anonymous"`
}

// User is one account. Passwords are stored as bcrypt hashes only
// ("broker hash-password" makes one); plain passwords never appear in config.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
	// Rooms the user may join (read and write). Empty with AllRooms false
	// means direct messages and presence only.
	Rooms    []string `yaml:"rooms"`
	AllRooms bool     `yaml:"all_rooms"`
}

// RoomLog configures the broker's durable, sequenced room log.
type RoomLog struct {
	// Enabled turns the room log on (default). Off, delivery is Mochi's
	// hop-by-hop QoS 1 only, which can lose messages.
	Enabled bool `yaml:"enabled"`
	// Retention limits per conversation; zero means unlimited.
	MaxMessages int           `yaml:"max_messages"`
	MaxAge      time.Duration `yaml:"max_age"`
	MaxBytes    int64         `yaml:"max_bytes"`
	// PageSize is the most messages one catch-up reply carries.
	PageSize int `yaml:"page_size"`
	// MaxPayload is the largest chat payload accepted into the log, in bytes.
	// The stamped record (re-encoded with sequence number and broker time)
	// must also fit limits.max_packet_size less StampHeadroom, or the
	// message is refused as oversized.
	MaxPayload int `yaml:"max_payload"`
	// MaxConversations bounds the conversations (rooms and DMs) the log
	// holds; a message that would start one more is acknowledged and
	// discarded (counted, logged). Each conversation costs memory for as
	// long as the broker runs. 0 means unlimited.
	MaxConversations int `yaml:"max_conversations"`
	// MaxConversationsPerUser bounds the conversations one user's messages
	// start (counted since the broker started); past it the user's new
	// conversations are refused like those over MaxConversations. 0 means
	// unlimited.
	MaxConversationsPerUser int `yaml:"max_conversations_per_user"`
	// MaxPendingSyncBytes bounds the catch-up reply bytes queued towards
	// one user's clients and not yet written to them: a client that asks
	// and does not read has its further requests dropped (counted) until
	// it reads. At least two pages (2 × max_payload).
	MaxPendingSyncBytes int `yaml:"max_pending_sync_bytes"`
}

// StampHeadroom is the room of limits.max_packet_size kept for the
// PUBLISH packet's own header, topic and properties around a stamped record.
const StampHeadroom = 4096

// DefaultBroker is the configuration of `broker` with no file, no environment
// and no flags.
func DefaultBroker() Broker {
	return Broker{
		TCP:        "127.0.0.1:1883",
		HTTP:       "127.0.0.1:8080",
		Storage:    "pebble",
		Durability: DurabilityProcess,
		LogFormat:  "json",
		LogLevel:   "info",
		Limits: Limits{
			MaxInflight:            8192,
			MaxInflightBytes:       DefaultMaxInflightBytes,
			MaxInflightBytesTotal:  DefaultMaxInflightBytesTotal,
			MaxClientWritesPending: 8192,
			ReceiveMaximum:         1024,
			MaxPacketSize:          256 * 1024,
			WriteTimeout:           2 * time.Second,
			MessageExpiry:          7 * 24 * time.Hour,
			SessionExpiry:          7 * 24 * time.Hour,
			ConnectTimeout:         DefaultConnectTimeout,
			MaxConnections:         DefaultMaxConnections,
			MaxConnectionsPerIP:    DefaultMaxConnectionsPerIP,
			MaxKeepAlive:           DefaultMaxKeepAlive,
		},
		RoomLog: RoomLog{
			Enabled:                 true,
			PageSize:                500,
			MaxPayload:              64 * 1024,
			MaxConversations:        100000,
			MaxConversationsPerUser: 1000,
			MaxPendingSyncBytes:     4 << 20,
		},
		Cluster: DefaultCluster(),
	}
}

// Validate reports every problem in b, one per line.
func (b *Broker) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := ValidateAddr(b.TCP, false); err != nil {
		add("tcp: %w", err)
	}
	if err := ValidateAddr(b.WS, true); err != nil {
		add("ws: %w", err)
	}
	if err := ValidateAddr(b.HTTP, true); err != nil {
		add("http: %w", err)
	}
	if b.Storage != "pebble" {
		// Checked here, not at start: a config the broker cannot run is a
		// configuration error (exit 2), reported with every other one.
		add("storage: %q is not built into this broker; use pebble", b.Storage)
	}
	if err := validateLogging(b.LogFormat, b.LogLevel); err != nil {
		errs = append(errs, err)
	}
	l := b.Limits
	for _, c := range []struct {
		name string
		v    int
	}{{"max_inflight", l.MaxInflight}, {"max_client_writes_pending", l.MaxClientWritesPending}, {"receive_maximum", l.ReceiveMaximum}, {"max_packet_size", l.MaxPacketSize}} {
		if c.v <= 0 {
			add("limits.%s: %d must be positive", c.name, c.v)
		}
	}
	// Mochi keeps these in narrower integers and would silently wrap or cap
	// larger values.
	if l.ReceiveMaximum > 65535 {
		add("limits.receive_maximum: %d is over MQTT's 65535", l.ReceiveMaximum)
	}
	if l.MaxInflight > 65535 {
		add("limits.max_inflight: %d is over Mochi's limit of 65535", l.MaxInflight)
	}
	if l.MaxClientWritesPending > math.MaxInt32 {
		add("limits.max_client_writes_pending: %d is over Mochi's limit of %d", l.MaxClientWritesPending, math.MaxInt32)
	}
	if l.MaxPacketSize > math.MaxUint32 {
		add("limits.max_packet_size: %d is over MQTT's limit of %d", l.MaxPacketSize, uint32(math.MaxUint32))
	}
	if l.WriteTimeout <= 0 {
		add("limits.write_timeout: %s must be a positive duration such as 2s", l.WriteTimeout)
	}
	errs = append(errs, l.validateConnLimits()...)
	errs = append(errs, l.validateInflightBytes()...)
	if l.MessageExpiry <= 0 || l.SessionExpiry <= 0 {
		add("limits: message_expiry and session_expiry must be positive durations such as 168h")
	}
	if err := b.Durability.Validate(); err != nil {
		add("durability: %w", err)
	}
	if b.RoomLog.MaxMessages < 0 || b.RoomLog.MaxAge < 0 || b.RoomLog.MaxBytes < 0 {
		add("room_log: retention limits cannot be negative")
	}
	if b.RoomLog.PageSize <= 0 {
		add("room_log.page_size: %d must be positive", b.RoomLog.PageSize)
	}
	if b.RoomLog.MaxPayload <= 0 || b.RoomLog.MaxPayload > l.MaxPacketSize {
		add("room_log.max_payload: %d must be positive and at most limits.max_packet_size (%d)", b.RoomLog.MaxPayload, l.MaxPacketSize)
	}
	errs = append(errs, b.RoomLog.validateLimits(l.MaxPacketSize)...)
	errs = append(errs, b.Cluster.validate(b.DataDir, b.RoomLog.Enabled)...)
	if b.Auth.UsersFile != "" {
		users, err := LoadUsers(b.Auth.UsersFile)
		if err != nil {
			errs = append(errs, err)
		} else {
			b.Auth.Users = append(users, b.Auth.Users...)
			b.Auth.UsersFile = "" // loaded once; Validate may run again
		}
	}
	errs = append(errs, validateUsers(b.Auth.Users)...)
	return errors.Join(errs...)
}

// Open reports whether the broker runs in open development mode: no users
// configured, so anonymous clients are let in and identities not enforced.
func (b *Broker) Open() bool { return len(b.Auth.Users) == 0 }

// ValidateAddr checks a host:port listener address; empty is allowed only
// when optional.
func ValidateAddr(addr string, optional bool) error {
	if addr == "" {
		if optional {
			return nil
		}
		return errors.New("address is empty")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q has an invalid host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has an invalid port %q", addr, port)
	}
	return nil
}

func validateLogging(format, level string) error {
	var errs []error
	if format != "json" && format != "text" {
		errs = append(errs, fmt.Errorf("log_format: %q is not one of json, text", format))
	}
	switch level {
	case "debug", "info", "warn", "warning", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not one of debug, info, warn, error", level))
	}
	return errors.Join(errs...)
}

// Durability names what an acknowledged chat message survives; see
// Broker.Durability.
type Durability string

// The durability modes.
const (
	// DurabilityProcess: appended to the operating system before the PUBACK;
	// survives kill -9 of the broker, not a power loss.
	DurabilityProcess Durability = "process"
	// DurabilityMachine: fsynced (group commit) before the PUBACK; survives
	// a power loss too.
	DurabilityMachine Durability = "machine"
)

// String is the mode's name as written in configuration.
func (d Durability) String() string { return string(d) }

// Set parses a mode, so that a flag can take it.
func (d *Durability) Set(s string) error {
	v := Durability(s)
	if err := v.Validate(); err != nil {
		return err
	}
	*d = v
	return nil
}

// Validate reports a mode that is not one of the two.
func (d Durability) Validate() error {
	switch d {
	case DurabilityProcess, DurabilityMachine:
		return nil
	}
	return fmt.Errorf("%q is not one of %s, %s", string(d), DurabilityProcess, DurabilityMachine)
}

// validateLimits checks the room log's memory and size bounds against each
// other and the packet size.
func (r RoomLog) validateLimits(maxPacket int) []error {
	var errs []error
	if r.MaxConversations < 0 || r.MaxConversationsPerUser < 0 {
		errs = append(errs, errors.New("room_log: max_conversations and max_conversations_per_user cannot be negative (0: unlimited)"))
	}
	if r.MaxPendingSyncBytes < 2*r.MaxPayload {
		errs = append(errs, fmt.Errorf("room_log.max_pending_sync_bytes: %d must be at least two pages (2 × max_payload = %d)", r.MaxPendingSyncBytes, 2*r.MaxPayload))
	}
	if maxPacket > 0 && maxPacket <= StampHeadroom {
		errs = append(errs, fmt.Errorf("limits.max_packet_size: %d must be over %d (a stamped record's headroom)", maxPacket, StampHeadroom))
	}
	return errs
}
