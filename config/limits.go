package config

import (
	"fmt"
	"math"
	"time"
)

// Limits are Mochi's capabilities that decide when messages are dropped or
// expire, set on purpose (Mochi's defaults expire offline messages after
// 24 h and drop silently at 8192 in flight); every drop is counted.
type Limits struct {
	// MaxInflight is the unacknowledged QoS 1 messages a client may hold,
	// past which Mochi drops its messages (counted); at most 65535.
	MaxInflight int `yaml:"max_inflight"`
	// MaxInflightBytes bounds a client's unacknowledged delivery bytes (0: none),
	// MaxInflightBytesTotal all clients' (max_inflight large ones are gigabytes):
	// past one a delivery is dropped (inflight_bytes) and repaired from the room log.
	MaxInflightBytes       int64 `yaml:"max_inflight_bytes"`
	MaxInflightBytesTotal  int64 `yaml:"max_inflight_bytes_total"`
	MaxClientWritesPending int   `yaml:"max_client_writes_pending"` // bounds a client's outbound queue (drops counted); at most 2147483647
	ReceiveMaximum         int   `yaml:"receive_maximum"`           // QoS 1 publishes a client may have unacknowledged towards the broker
	MaxPacketSize          int   `yaml:"max_packet_size"`           // the largest MQTT packet accepted, in bytes
	// WriteTimeout bounds a socket write, past which the connection closes:
	// Mochi writes under the client's lock, so a subscriber that stops
	// reading would block its topics' publishers until its keep-alive
	// expires (docs/mochi-and-paho.md). The session and room log keep all.
	WriteTimeout   time.Duration `yaml:"write_timeout"`
	MessageExpiry  time.Duration `yaml:"message_expiry"`  // how long offline and retained messages are kept
	SessionExpiry  time.Duration `yaml:"session_expiry"`  // how long a persistent session outlives its connection
	ConnectTimeout time.Duration `yaml:"connect_timeout"` // closes a connection without CONNECT, before idle ones use up fds
	// MaxConnections bounds the TCP listener's connections and
	// MaxConnectionsPerIP one address's; past them a new one is closed at
	// accept (counted, logged). 0: unlimited.
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxKeepAlive is the longest keep-alive an MQTT 5 client gets (Server
	// Keep Alive), so a dead connection does not hold its session forever;
	// 3.1.1 keeps its own. Whole seconds up to 65535s; 0 turns it off.
	MaxKeepAlive time.Duration `yaml:"max_keep_alive"`
}

// validate reports every problem in the limits section, one per error.
func (l Limits) validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, c := range []struct {
		name string
		v    int
	}{{"max_inflight", l.MaxInflight}, {"max_client_writes_pending", l.MaxClientWritesPending}, {"receive_maximum", l.ReceiveMaximum}, {"max_packet_size", l.MaxPacketSize}} {
		if c.v <= 0 {
			add("limits.%s: %d must be positive", c.name, c.v)
		}
	}
	// Mochi's narrower integers would wrap or cap larger values.
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
	if l.ConnectTimeout <= 0 {
		add("limits.connect_timeout: %s must be a positive duration such as 10s", l.ConnectTimeout)
	}
	for _, c := range []struct {
		name string
		v    int64
	}{{"max_connections", int64(l.MaxConnections)}, {"max_connections_per_ip", int64(l.MaxConnectionsPerIP)},
		{"max_inflight_bytes", l.MaxInflightBytes}, {"max_inflight_bytes_total", l.MaxInflightBytesTotal}} {
		if c.v < 0 {
			add("limits.%s: %d cannot be negative (0 means unlimited)", c.name, c.v)
		}
	}
	if l.MaxKeepAlive < 0 || l.MaxKeepAlive > 65535*time.Second || l.MaxKeepAlive%time.Second != 0 {
		add("limits.max_keep_alive: %s must be whole seconds from 0 (off) to 65535s", l.MaxKeepAlive)
	}
	if l.MessageExpiry <= 0 || l.SessionExpiry <= 0 {
		add("limits: message_expiry and session_expiry must be positive durations such as 168h")
	}
	return errs
}
