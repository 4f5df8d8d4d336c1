package session

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestResumeAbortedRightAfterConnect shows a Mochi trap: when a persistent
// session is resumed, Mochi moves its queued messages to the new connection
// and deletes their stored records, writing them back only when the resend
// after CONNACK runs. A subscriber whose first reconnects after a broker
// restart die right after CONNECT loses its whole queue that way. The room
// log has every message, so the node still gets all of them.
func TestResumeAbortedRightAfterConnect(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	tx := startNode(t, nodeConfig(t, b.URL, "tx", "r1"))
	cfg := nodeConfig(t, b.URL, "rx", "r1")
	cfg.StateDir = t.TempDir()
	rx := startNode(t, cfg)
	clientID := rx.ClientID() // kept in the state dir: rx2 resumes this session
	waitOnline(t, "r1", tx, rx)
	send(t, tx, "r1", 5)
	rx.got.waitFor(t, 10*time.Second, "the first 5", func(c *collector) bool { return len(c.msgs) >= 5 })
	rx.close(t)
	send(t, tx, "r1", 20) // queued in rx's persistent session
	tx.close(t)

	b.Close()
	b = brokertest.Start(t, b.Config) // same port and data directory
	for range 3 {
		abortedResume(t, b.Addr, clientID)
	}

	rx2 := startNode(t, cfg)
	rx2.got.waitFor(t, 20*time.Second, "the 20 sent while away", func(c *collector) bool { return len(c.msgs) >= 20 })
	var seqs []uint64
	for _, m := range rx2.got.messages() {
		seqs = append(seqs, m.Env.Seq)
	}
	seqs = sortedCopy(seqs)
	if len(seqs) != 20 || seqs[0] != 6 || seqs[19] != 25 {
		t.Fatalf("after the aborted resumes got seqs %v, want 6..25 once each", seqs)
	}
}

// abortedResume resumes clientID's persistent session (MQTT 3.1.1 CONNECT,
// clean session off) and drops the connection as soon as the CONNACK
// arrives, before the queued messages Mochi resends after it can be read.
// (Waiting for the CONNACK keeps the test deterministic: a CONNECT still in
// a socket buffer could otherwise take the session over from the real node.)
func abortedResume(t *testing.T, addr, clientID string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 30, byte(len(clientID) >> 8), byte(len(clientID))}
	body = append(body, clientID...)
	if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil || connack[0] != 0x20 || connack[3] != 0 {
		t.Fatalf("CONNACK: % x, %v", connack, err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
}
