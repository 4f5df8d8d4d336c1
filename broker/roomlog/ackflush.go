package roomlog

import mqtt "github.com/mochi-mqtt/server/v2"

// AckFlusher is a client connection that holds acknowledgements back to
// send several in one write (the broker's TCP connections hold PUBACKs
// until their reader comes back to the socket). Before an append that
// waits (for the device's flush with durability machine, for the other
// brokers in cluster mode) the hook has the publisher's connection write
// what it holds: those PUBACKs are for messages already stored, and
// would otherwise wait for this append too.
type AckFlusher interface {
	FlushAcks() error
}

// flushAcks writes the acknowledgements cl's connection holds, if it
// holds any. A failed write is the connection's to report: its next read
// or write fails the same way and Mochi closes it; the publisher resends
// what it has no PUBACK for.
func (h *Hook) flushAcks(cl *mqtt.Client) {
	f, ok := cl.Net.Conn.(AckFlusher)
	if !ok {
		return
	}
	if err := f.FlushAcks(); err != nil {
		h.log.WithError(err).WithField("client_id", cl.ID).Debug("room log: held acknowledgements not written; the connection is failing")
	}
}
