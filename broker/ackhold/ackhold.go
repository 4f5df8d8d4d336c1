// Package ackhold is the one rule by which the broker and the chat node hold
// MQTT PUBACKs back: which writes are PUBACKs that may wait, and how many
// may wait at once. Each side decides when the held ones leave:
//
//   - the broker (broker/clientconn.go) until the connection's reader comes
//     back to the socket: Mochi writes a PUBACK before it handles the
//     publish, and held until then the PUBACK follows the publish's
//     handling (broker/conformance's TestEmptyRetainedPublishClears fails
//     without it);
//   - the chat node (chatnode/mqttconn) up to a few milliseconds, or until
//     it writes anything else: at a thousand deliveries a second several
//     PUBACKs leave in one write, and the broker reads them in one read.
//
// What the node's hold buys is the broker's CPU per delivery under
// bench-compare's chat loads (docs/benchmarks.md, "Mechanisms"). To
// measure it again, build chatnode with mqttconn.Open wrapping with Wrap
// instead of WrapHoldingAcks and run bench-compare -loads chat-3x333 -bin
// DIR with each build, in turn, three rounds or more.
package ackhold

// Max is how many PUBACKs wait at most: the one that would make Max goes
// out at once, with the ones held before it.
const Max = 64

// IsPuback reports whether p is one whole MQTT PUBACK without a reason code
// (MQTT 3.1.1, or MQTT 5 success), as Mochi and paho write it: one Write
// per packet. Only those wait; anything else goes out at once and takes
// the held PUBACKs with it.
func IsPuback(p []byte) bool { return len(p) == Len && p[0] == 0x40 && p[1] == 2 }

// Len is the length of a PUBACK without a reason code.
const Len = 4
