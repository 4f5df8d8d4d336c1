// Package wire is the contract between distchat's programs: the MQTT topic
// scheme, the chat message envelope and name validation. The chat node's log
// schema is no part of it (chatnode/nodelog).
//
// It lives on the broker's side because the server defines the protocol its
// clients speak; it imports neither Mochi nor paho, so the broker, the node and
// the analysis tool can all depend on it without dragging an MQTT library along.
package wire
