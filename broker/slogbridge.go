package broker

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"
)

// redactedAttrs are slog attribute keys under which Mochi logs whole packets
// on errors: no chat text may reach the broker's logs.
var redactedAttrs = map[string]bool{"pk": true, "packet": true, "payload": true, "password": true}

// Mochi v2.7.9 calls no hook when it drops a QoS 1 message over a
// subscriber's MaximumInflight or MQTT 5 Maximum Packet Size: it only logs
// failedPublishMsg at debug level, so the bridge matches Mochi's message
// strings and turns these records into counted drops.
// TestNeverAckingSubscriberDropsCountedAndLogged and
// TestMessageOverSubscribersMaximumPacketSizeIsCounted fail if they change.
const (
	quotaDropMsg     = "client store quota reached"
	packetIDsMsg     = "packet ids exhausted"
	failedPublishMsg = "failed publishing packet"
	failedRetainMsg  = "failed to publish retained message"
	// publishErrorMsg is Mochi's error line for every publish a hook
	// refuses. The room log logs its own refusals, rate-limited, so these
	// are not forwarded: a client could flood the log.
	publishErrorMsg = "publish packet error"
	roomLogHookID   = "distchat-roomlog"
)

// slogBridge is a slog.Handler that forwards Mochi's records to logrus, so
// every line of the process has the same JSON shape.
type slogBridge struct {
	log    *logrus.Logger
	attrs  []slog.Attr
	group  string
	onDrop func(client, topic string, id uint16, cause string)
}

func newSlogBridge(log *logrus.Logger, onDrop func(client, topic string, id uint16, cause string)) *slog.Logger {
	return slog.New(&slogBridge{log: log, onDrop: onDrop})
}

// Enabled is always true: the drop detection needs Mochi's debug records;
// Handle applies the logger's level to what it forwards.
func (h *slogBridge) Enabled(context.Context, slog.Level) bool { return true }

func (h *slogBridge) Handle(_ context.Context, r slog.Record) error {
	fields := logrus.Fields{"component": "mochi"}
	var topic, client, hook string
	var id uint16
	var cause error
	add := func(a slog.Attr) bool {
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		val := a.Value.Resolve().Any()
		switch v := val.(type) {
		case packets.Packet:
			topic, id = v.TopicName, v.PacketID
		case *packets.Packet: // Mochi's write loop logs the queued pointer
			if v != nil {
				topic, id = v.TopicName, v.PacketID
			}
		case error:
			cause = v
			if key == "error" {
				val = v.Error()
			}
		case string:
			switch a.Key {
			case "client":
				client = v
			case "hook":
				hook = v
			}
			val = clip(v) // a client id is up to 64 KiB of client text
		}
		if redactedAttrs[a.Key] {
			val = "[redacted]"
		}
		fields[key] = val
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	switch {
	case r.Message == quotaDropMsg || r.Message == packetIDsMsg:
		return nil // logged from the record that follows, which has the topic
	case (r.Message == failedPublishMsg || r.Message == failedRetainMsg) && errors.Is(cause, packets.ErrQuotaExceeded):
		h.onDrop(client, topic, id, dropInflightQuota)
		return nil
	case r.Message == failedPublishMsg && errors.Is(cause, packets.ErrPacketTooLarge):
		h.onDrop(client, topic, id, DropPacketTooLarge)
		return nil
	case r.Message == publishErrorMsg && hook == roomLogHookID:
		return nil
	case !h.log.IsLevelEnabled(toLogrusLevel(r.Level)):
		return nil
	}
	h.log.WithFields(fields).Log(toLogrusLevel(r.Level), strings.TrimSpace(r.Message))
	return nil
}

func (h *slogBridge) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Concat(h.attrs, attrs)
	return &c
}

func (h *slogBridge) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}

func toLogrusLevel(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.InfoLevel
	}
	return logrus.DebugLevel
}

// NewLogger returns the logrus logger the broker's config asks for.
func NewLogger(format, level string) (*logrus.Logger, error) {
	log := logrus.New()
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	log.SetLevel(lvl)
	if format == "text" {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	} else {
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: "2006-01-02T15:04:05.000000000Z07:00"})
	}
	return log, nil
}
