// Package broker is a distchat broker node: Mochi MQTT embedded and
// configured so that it authenticates users, enforces per-room ACLs, never
// drops a QoS 1 message without counting and logging it, logs through logrus
// with payloads redacted, and runs the room log (package roomlog) that makes
// delivery end to end.
//
// Each concern is one Mochi hook embedding HookBase that provides only its
// events: authHook (who may connect, publish and subscribe), eventsHook
// (connection, subscription and drop logging and counters). Mochi's own
// slog output is bridged into logrus by slogBridge, which also turns the
// hook-less "client store quota reached" drop into a counted, logged event.
package broker
