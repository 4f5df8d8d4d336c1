// Package wire is the contract between distchat's programs: the MQTT topic
// scheme, the chat message envelope and name validation (not the node's log
// schema, chatnode/nodelog). It lives with the broker, as the server defines
// its protocol, and imports no MQTT library, so every program can depend on it.
package wire
