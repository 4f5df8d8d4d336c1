// Package wire is the contract between distchat's programs: the MQTT topic
// scheme, the chat message envelope, name validation, and the names and fields
// of the JSON-lines log events that chat nodes write and the analysis tool reads.
//
// It lives beside the chat node because the node owns the envelope and the log
// schema, but it imports neither Mochi nor paho, so the broker, the node and
// the analysis tool can all depend on it without dragging an MQTT library along.
package wire
