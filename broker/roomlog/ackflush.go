package roomlog

import mqtt "github.com/mochi-mqtt/server/v2"

// AckFlusher is a client connection that holds PUBACKs back until the
// client's next packets are handled (broker/clientconn.go). Mochi handles a
// client's packets one after another, so while an append waits (for a
// device flush, or for the other brokers of a cluster) the PUBACKs of the
// client's earlier publishes, already stored and routed, would wait for it
// too. Before such an append the hook has them written: a publisher with
// several publishes in flight gets each PUBACK when its own is stored.
type AckFlusher interface {
	FlushAcks() error
}

// flushAcks writes cl's held PUBACKs, when its connection holds any.
func flushAcks(cl *mqtt.Client) {
	if f, ok := cl.Net.Conn.(AckFlusher); ok {
		_ = f.FlushAcks() // a failed write ends the connection; Mochi sees it on its next read
	}
}
