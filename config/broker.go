package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/broker/wire"
)

// Broker configures a broker node. The default is a local development
// broker, like Mosquitto 2's local-only mode: loopback only, anonymous
// clients, identities not enforced, nothing persisted.
type Broker struct {
	TCP  string `yaml:"tcp"`  // the MQTT listener; default 127.0.0.1:1883 (loopback only)
	WS   string `yaml:"ws"`   // MQTT over WebSocket; empty turns it off
	HTTP string `yaml:"http"` // /healthz and /stats; empty turns it off; default 127.0.0.1:8080
	// Pprof serves Go's profiler on HTTP under /debug/pprof/; off by default,
	// as anyone who reaches the listener could read the broker's internals.
	Pprof   bool   `yaml:"pprof"`
	DataDir string `yaml:"data_dir"` // sessions, retained messages, the room log; empty: memory (warned)
	Storage string `yaml:"storage"`  // the session store in DataDir: only "pebble" is built in
	// Durability is what an acknowledged chat message survives (default
	// DurabilityProcess): the room log is the only durable write on its path.
	Durability Durability `yaml:"durability"`
	LogFormat  string     `yaml:"log_format"` // json (default) or text
	LogLevel   string     `yaml:"log_level"`  // debug, info (default), warn, error
	Limits     Limits     `yaml:"limits"`
	Auth       Auth       `yaml:"auth"`
	RoomLog    RoomLog    `yaml:"room_log"` // the durable, sequenced log of every room (zero loss end to end)
	Cluster    Cluster    `yaml:"cluster"`  // with its node set, shares a replicated room log (docs/cluster.md)
}

// Auth decides who may connect and what they may do.
type Auth struct {
	// UsersFile is a YAML file of users, added to Users; with none at all the
	// broker runs in open development mode and enforces nothing.
	UsersFile string `yaml:"users_file"`
	Users     []User `yaml:"users"`
	// Anonymous lets clients without credentials read rooms and presence
	// (an operator's mosquitto_sub). Only meaningful with users.
	Anonymous bool `yaml:"anonymous"`
}

// User is one account. Passwords are stored as bcrypt hashes only
// ("broker hash-password" makes one); plain passwords never appear in config.
type User struct {
	Name         string   `yaml:"name"`
	PasswordHash string   `yaml:"password_hash"`
	Rooms        []string `yaml:"rooms"` // may join (read and write); none: DMs and presence only
	AllRooms     bool     `yaml:"all_rooms"`
}

// RoomLog configures the broker's durable, sequenced room log.
type RoomLog struct {
	Enabled bool `yaml:"enabled"` // default on; off, Mochi's hop-by-hop QoS 1 can lose messages
	// Retention limits per conversation; zero means unlimited.
	MaxMessages int           `yaml:"max_messages"`
	MaxAge      time.Duration `yaml:"max_age"`
	MaxBytes    int64         `yaml:"max_bytes"`
	PageSize    int           `yaml:"page_size"` // the most messages one catch-up reply carries
	// MaxPayload is the largest chat payload accepted into the log, in
	// bytes; the stamped record must also fit limits.max_packet_size less
	// StampHeadroom, or the message is refused as oversized.
	MaxPayload int `yaml:"max_payload"`
	// MaxConversations bounds the conversations (rooms and DMs), each of
	// which costs memory while the broker runs: a message that would start
	// one more is acknowledged and discarded (counted, logged). 0: unlimited.
	MaxConversations int `yaml:"max_conversations"`
	// MaxConversationsPerUser bounds those one user starts (since the broker
	// started), refused likewise. 0: unlimited.
	MaxConversationsPerUser int `yaml:"max_conversations_per_user"`
	// MaxPendingSyncBytes bounds the catch-up reply bytes queued unwritten
	// to a user's clients: one that asks and does not read has its requests
	// dropped (counted) until it reads. At least 2 × max_payload.
	MaxPendingSyncBytes int `yaml:"max_pending_sync_bytes"`
}

// StampHeadroom is limits.max_packet_size's room for a PUBLISH around a stamped record.
const StampHeadroom = 4096

// DefaultBroker is the configuration of `broker` with no file, environment or flags.
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
			MaxInflightBytes:       16 << 20, // thousands of chat messages: more than a node that reads leaves unacknowledged
			MaxInflightBytesTotal:  1 << 30,  // so many slow clients together cannot take the machine's memory either
			MaxClientWritesPending: 8192,
			ReceiveMaximum:         1024,
			MaxPacketSize:          256 * 1024,
			WriteTimeout:           2 * time.Second,
			MessageExpiry:          7 * 24 * time.Hour,
			SessionExpiry:          7 * 24 * time.Hour,
			ConnectTimeout:         10 * time.Second,
			MaxConnections:         10000, // below the usual file descriptor limits, so accept does not fail first
			MaxConnectionsPerIP:    1000,  // one host cannot take every slot; many users behind one NAT still fit
			MaxKeepAlive:           5 * time.Minute,
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
	for _, a := range []struct {
		name, addr string
		optional   bool
	}{{"tcp", b.TCP, false}, {"ws", b.WS, true}, {"http", b.HTTP, true}} {
		if err := ValidateAddr(a.addr, a.optional); err != nil {
			add("%s: %w", a.name, err)
		}
	}
	if b.Storage != "pebble" { // a configuration error (exit 2), with every other one
		add("storage: %q is not built into this broker; use pebble", b.Storage)
	}
	errs = append(errs, validateLogging(b.LogFormat, b.LogLevel))
	errs = append(errs, b.Limits.validate()...)
	if err := b.Durability.Validate(); err != nil {
		add("durability: %w", err)
	}
	errs = append(errs, b.RoomLog.validate(b.Limits.MaxPacketSize)...)
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

// Open reports open development mode: no users, so nothing is enforced.
func (b *Broker) Open() bool { return len(b.Auth.Users) == 0 }

// ValidateAddr checks a host:port listener address (empty only when optional).
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

// Durability names what an acknowledged chat message survives (Broker.Durability).
type Durability string

// The durability modes.
const (
	// DurabilityProcess: written to the OS before the PUBACK; survives kill -9, not power loss.
	DurabilityProcess Durability = "process"
	// DurabilityMachine: fsynced (group commit) before the PUBACK; survives power loss.
	DurabilityMachine Durability = "machine"
)

// String is the mode's name as written in configuration.
func (d Durability) String() string { return string(d) }

// Set parses a mode, so that a flag can take it.
func (d *Durability) Set(s string) error {
	if err := Durability(s).Validate(); err != nil {
		return err
	}
	*d = Durability(s)
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

// validate checks the room log's bounds against each other and the packet size.
func (r RoomLog) validate(maxPacket int) []error {
	var errs []error
	if r.MaxMessages < 0 || r.MaxAge < 0 || r.MaxBytes < 0 {
		errs = append(errs, errors.New("room_log: retention limits cannot be negative"))
	}
	if r.PageSize <= 0 {
		errs = append(errs, fmt.Errorf("room_log.page_size: %d must be positive", r.PageSize))
	}
	if r.MaxPayload <= 0 || r.MaxPayload > maxPacket {
		errs = append(errs, fmt.Errorf("room_log.max_payload: %d must be positive and at most limits.max_packet_size (%d)", r.MaxPayload, maxPacket))
	}
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

// UsersFile is the shape of a users file: the accounts and their rooms.
type UsersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads a users file; Broker's Validate validates them with the inline ones.
func LoadUsers(path string) ([]User, error) {
	var f UsersFile
	if err := ReadYAML(path, &f); err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	return f.Users, nil
}

func validateUsers(users []User) []error {
	var errs []error
	seen := make(map[string]bool, len(users))
	for i, u := range users {
		where := fmt.Sprintf("auth.users[%d] %q", i, u.Name)
		if err := wire.ValidateName("user", u.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if seen[u.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate user", where))
		}
		seen[u.Name] = true
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			errs = append(errs, fmt.Errorf("%s: password_hash is not a bcrypt hash (make one with: broker hash-password)", where))
		} else if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			errs = append(errs, fmt.Errorf("%s: password_hash: %w", where, err))
		}
		for _, r := range u.Rooms {
			if err := wire.ValidateName("room", r); err != nil {
				errs = append(errs, fmt.Errorf("%s: rooms: %w", where, err))
			}
		}
	}
	return errs
}
