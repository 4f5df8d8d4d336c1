// Package interop holds tests that run distchat's parts beside MQTT clients
// that know nothing of it: the broker is an MQTT broker first, and in
// cluster mode any broker serves any client. It has no code of its own; it
// lives under compose, which may import both the broker's and the chat
// node's packages (the broker's own tests may not import the node's).
package interop
