package mqttconn

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/rawio"
)

// Open is a paho OpenConnectionFunc (ClientOptions.SetCustomOpenConnectionFn):
// it dials the broker URL as paho does for the schemes a node accepts
// (without paho's proxy-from-environment support) and wraps the connection
// in a Conn holding PUBACKs up to AckDelay; plain TCP also goes through
// package rawio.
func Open(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		if c, err = dialer.Dial("tcp", uri.Host); err == nil {
			c = rawio.Wrap(c)
		}
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		c, err = tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
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
