// Package broker is a distchat broker node: Mochi MQTT embedded and
// configured so that it authenticates users, enforces per-room ACLs, never
// drops a QoS 1 message without counting and logging it, logs through
// logrus with payloads redacted, and runs the room log (package roomlog)
// that makes delivery end to end. Each concern is one Mochi hook that
// provides only its events; slogBridge carries Mochi's own logs to logrus.
package broker
