package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/distchat/distchat/broker/wire"
)

// Node configures a chat node. The defaults are the paho settings that do not
// lose messages (docs/mochi-and-paho.md): persistent session, auto-reconnect
// with a short maximum back-off, and a bounded in-flight window.
type Node struct {
	// Broker is the MQTT server URL, tcp://HOST:PORT (also mqtt://) or
	// ws://HOST:PORT/PATH, or several: the brokers of one cluster, tried in
	// order; on the loss of one the node moves to the next (see Brokers).
	Broker Brokers `yaml:"broker"`
	// Nick is the name shown to others and the MQTT username unless User is set.
	Nick         string `yaml:"nick"`
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Rooms joined at start; the first is the current room.
	Rooms []string `yaml:"rooms"`
	// ClientID is the MQTT client id. Empty (the default) gives each device
	// its own: "<user>-<device>" with a device id kept in StateDir, or,
	// without StateDir, an id for this run only with a clean session.
	ClientID string `yaml:"client_id"`
	// Log is a file that receives the JSON-lines log as well as stderr.
	Log       string `yaml:"log"`
	LogFormat string `yaml:"log_format"`
	LogLevel  string `yaml:"log_level"`
	// StateDir keeps this device's id and the last room sequence handled per
	// conversation, for catch-up after a restart.
	StateDir string `yaml:"state_dir"`
	// Run labels every log line; the analysis tool calls it the scenario.
	Run string `yaml:"run"`
	// KeepAlive is the MQTT keep-alive interval.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// MaxReconnectInterval caps the reconnect back-off (paho's default is 10
	// minutes): a node is back at most this long after its broker, and an
	// attempt a second costs a chat node nothing.
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// Window bounds the QoS 1 publishes awaiting PUBACK; unbounded windows
	// overflow the broker's in-flight quota (docs/mochi-and-paho.md).
	Window int `yaml:"window"`
	// History is how many past messages a room shows on join (0: none).
	History int `yaml:"history"`
	// MaxPayload is the largest message the node sends, in bytes.
	MaxPayload int `yaml:"max_payload"`
	// GapWait bounds how long a message after a sequence gap is held back
	// while the gap is repaired from the room log.
	GapWait time.Duration `yaml:"gap_wait"`
	// StallFailover applies with several brokers: a publish that waits this
	// long for its PUBACK on a connected broker makes the node leave that
	// broker for the next one (a broker cut off from its cluster's majority
	// acknowledges nothing, and MQTT sends a publish again only on a new
	// connection).
	StallFailover time.Duration `yaml:"stall_failover"`
}

// DefaultNode is the chat node configuration with no file, environment or flags.
func DefaultNode() Node {
	return Node{
		Broker:               Brokers{"tcp://127.0.0.1:1883"},
		LogFormat:            "json",
		LogLevel:             "info",
		KeepAlive:            20 * time.Second,
		MaxReconnectInterval: time.Second,
		ConnectTimeout:       10 * time.Second,
		Window:               64,
		History:              20,
		MaxPayload:           wire.MaxPayloadBytes,
		GapWait:              2 * time.Second,
		StallFailover:        5 * time.Second,
	}
}

// Validate reports every problem in n, one per line, and fills derived
// defaults (User).
func (n *Node) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	errs = append(errs, n.Broker.Validate())
	if n.Nick == "" {
		add("nick: required (-nick NAME)")
	} else if err := wire.ValidateName("nick", n.Nick); err != nil {
		add("nick: %w", err)
	}
	if n.User == "" {
		n.User = n.Nick
	} else if err := wire.ValidateName("user", n.User); err != nil {
		add("user: %w", err)
	}
	if n.Password != "" && n.PasswordFile != "" {
		add("password and password_file: give one, not both")
	}
	for _, r := range n.Rooms {
		if err := wire.ValidateName("room", r); err != nil {
			add("rooms: %w", err)
		}
	}
	errs = append(errs, validateLogging(n.LogFormat, n.LogLevel))
	if n.KeepAlive < time.Second || n.MaxReconnectInterval <= 0 || n.ConnectTimeout <= 0 || n.GapWait <= 0 || n.StallFailover <= 0 {
		add("keep_alive (≥1s), max_reconnect_interval, connect_timeout, gap_wait and stall_failover must be positive durations")
	}
	if n.Window < 1 || n.Window > 1000 {
		add("window: %d must be between 1 and 1000 (larger windows overflow the broker's in-flight quota)", n.Window)
	}
	if n.History < 0 {
		add("history: %d cannot be negative", n.History)
	}
	if n.MaxPayload < 256 {
		add("max_payload: %d is too small (at least 256 bytes)", n.MaxPayload)
	}
	return errors.Join(errs...)
}
