package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/distchat/distchat/broker/wire"
)

// Node configures a chat node, by default with the paho settings that do
// not lose messages (docs/mochi-and-paho.md): persistent session, quick
// reconnects, a bounded in-flight window.
type Node struct {
	// Broker is the MQTT server URL, tcp://HOST:PORT or ws://HOST:PORT/PATH,
	// or a cluster's, tried in order (see Brokers).
	Broker       Brokers  `yaml:"broker"`
	Nick         string   `yaml:"nick"` // shown to others, and the MQTT username unless User is set
	User         string   `yaml:"user"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	Rooms        []string `yaml:"rooms"` // joined at start; the first is the current room
	// ClientID is the MQTT client id; empty gives "<user>-<device>", its
	// device id kept in StateDir, or one for this run with a clean session.
	ClientID             string        `yaml:"client_id"`
	Log                  string        `yaml:"log"` // a file that receives the JSON-lines log as well as stderr
	LogFormat            string        `yaml:"log_format"`
	LogLevel             string        `yaml:"log_level"`
	StateDir             string        `yaml:"state_dir"`              // keeps the device id and last seq per conversation, for catch-up
	Run                  string        `yaml:"run"`                    // labels every log line; the analysis tool calls it the scenario
	KeepAlive            time.Duration `yaml:"keep_alive"`             // the MQTT keep-alive interval
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"` // caps the back-off (paho's: 10 min): back soon after the broker
	ConnectTimeout       time.Duration `yaml:"connect_timeout"`        // bounds one connection attempt
	Window               int           `yaml:"window"`                 // bounds the publishes awaiting PUBACK, within the broker's quota
	History              int           `yaml:"history"`                // past messages a room shows on join (0: none)
	MaxPayload           int           `yaml:"max_payload"`            // the largest message the node sends, in bytes
	GapWait              time.Duration `yaml:"gap_wait"`               // how long a message after a gap waits for its repair
	// StallFailover: with several brokers, a PUBACK this late moves the
	// node to the next (a broker cut off from its majority acknowledges
	// nothing, and MQTT resends only on a new connection).
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

// Validate reports every problem in n, one per line, and fills in User.
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

// Brokers is the MQTT servers a chat node tries in order, moving on when one
// is lost. YAML takes a URL, a comma-separated string or a list; -broker and
// DISTCHAT_BROKER a comma-separated string.
type Brokers []string

// String joins the URLs with commas, as the flag takes them.
func (b Brokers) String() string { return strings.Join(b, ",") }

// UnmarshalYAML accepts a URL, a comma-separated list or a sequence of URLs.
func (b *Brokers) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*b = SplitList(n.Value)
		return nil
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		*b = SplitList(strings.Join(items, ","))
		return nil
	}
	return fmt.Errorf("line %d: broker: want a URL or a list of URLs", n.Line)
}

// brokerSchemes are the URL schemes paho dials.
var brokerSchemes = []string{"tcp", "mqtt", "ws", "wss", "ssl", "tls", "mqtts"}

// Validate reports every bad URL and each listed twice (delaying the move to a live one).
func (b Brokers) Validate() error {
	if len(b) == 0 {
		return errors.New("broker: at least one URL is required (-broker tcp://HOST:PORT)")
	}
	var errs []error
	seen := map[string]bool{}
	for _, s := range b {
		if seen[s] {
			errs = append(errs, fmt.Errorf("broker: %q is listed twice", s))
		}
		seen[s] = true
		u, err := url.Parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
			continue
		}
		if !slices.Contains(brokerSchemes, u.Scheme) {
			errs = append(errs, fmt.Errorf("broker: %q needs a scheme such as tcp://HOST:PORT", s))
		}
		if u.Host == "" {
			errs = append(errs, fmt.Errorf("broker: %q has no host:port", s))
		}
	}
	return errors.Join(errs...)
}
