package config

import (
	"fmt"
	"time"
)

// Connection limits of the broker's MQTT TCP listener. Every accepted socket
// costs a file descriptor and a goroutine before its client has said who it
// is; these bound what strangers can hold that way, so running out of file
// descriptors cannot stop the broker from taking real clients.
const (
	// DefaultConnectTimeout is how long a new connection may take to send
	// its CONNECT packet before the broker closes it.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxConnections is the most TCP connections the listener holds
	// at once, authenticated or not; it stays below the usual file
	// descriptor limits so accept does not fail first.
	DefaultMaxConnections = 10000
	// DefaultMaxConnectionsPerIP is the most TCP connections from one
	// remote address: one host cannot take every slot, while many users
	// behind one NAT still fit.
	DefaultMaxConnectionsPerIP = 1000
	// DefaultMaxKeepAlive is the longest keep-alive an MQTT 5 client gets
	// (limits.max_keep_alive).
	DefaultMaxKeepAlive = 5 * time.Minute
)

// validateConnLimits checks connect_timeout, max_connections and
// max_connections_per_ip, one error per problem.
func (l Limits) validateConnLimits() []error {
	var errs []error
	if l.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("limits.connect_timeout: %s must be a positive duration such as 10s", l.ConnectTimeout))
	}
	if l.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("limits.max_connections: %d cannot be negative (0 means unlimited)", l.MaxConnections))
	}
	if l.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("limits.max_connections_per_ip: %d cannot be negative (0 means unlimited)", l.MaxConnectionsPerIP))
	}
	if l.MaxKeepAlive < 0 || l.MaxKeepAlive > 65535*time.Second || l.MaxKeepAlive%time.Second != 0 {
		errs = append(errs, fmt.Errorf("limits.max_keep_alive: %s must be whole seconds from 0 (off) to 65535s", l.MaxKeepAlive))
	}
	return errs
}
