package mqttconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/chatnode/rawsock"
)

// Open is a paho OpenConnectionFunc (ClientOptions.SetCustomOpenConnectionFn):
// it opens the connection for the broker URL as paho itself does for the
// schemes a node accepts (tcp, mqtt, ssl, tls, mqtts, ws, wss; without
// paho's proxy-from-environment support) and wraps it in a Conn that holds
// PUBACKs back up to AckDelay. A TCP connection, under TLS or not, reads and
// writes with raw system calls (package rawsock).
func Open(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = dialTCP(context.Background(), dialer, uri.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		c, err = dialTLS(dialer, uri.Host, o.TLSConfig)
	case "ws", "wss":
		var tlsc *tls.Config
		if uri.Scheme == "wss" {
			tlsc = o.TLSConfig
		}
		dial := *uri
		dial.User = nil // gorilla/websocket refuses URLs with credentials
		c, err = mqtt.NewWebsocket(dial.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	default:
		return nil, fmt.Errorf("broker %s: unsupported scheme %q", uri.Redacted(), uri.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", uri.Redacted(), err)
	}
	return WrapHoldingAcks(c, AckDelay), nil
}

// dialTCP dials addr and wraps the connection to read and write with raw
// system calls, which do not wake the runtime's monitor thread per packet.
func dialTCP(ctx context.Context, dialer *net.Dialer, addr string) (net.Conn, error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return rawsock.Wrap(c), nil
}

// dialTLS is tls.DialWithDialer over a TCP connection that reads and writes
// with raw system calls: the dialer's Timeout and Deadline cover the
// connection and the handshake, and a config without ServerName gets the
// host of addr, as tls.DialWithDialer does.
func dialTLS(dialer *net.Dialer, addr string, cfg *tls.Config) (net.Conn, error) {
	ctx := context.Background()
	if dialer.Timeout != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dialer.Timeout)
		defer cancel()
	}
	if !dialer.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dialer.Deadline)
		defer cancel()
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	raw, err := dialTCP(ctx, dialer, addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("tls handshake: %w", err), raw.Close())
	}
	return c, nil
}
