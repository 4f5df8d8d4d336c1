package chatnode

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestFailoverNotice: with a broker list the interactive node names the
// broker it is connected to, and when that one is lost says so in one line
// and names the next one it reached; a message typed afterwards is sent
// there.
func TestFailoverNotice(t *testing.T) {
	b1 := brokertest.Start(t, brokertest.Config(t))
	b2 := brokertest.Start(t, brokertest.Config(t))
	var screen seenScreen
	var errs lockedBuf
	in, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		args := []string{"-broker", b1.URL + "," + b2.URL, "-nick", "alice", "-room", "lobby", "-history", "0",
			"-max-reconnect", "200ms", "-log", filepath.Join(t.TempDir(), "n.log")}
		done <- Main(context.Background(), args, in, &screen, &errs)
	}()
	screen.waitShown(t, "alice", "-- connected to broker "+b1.URL+"\n")
	b1.Close()
	screen.waitShown(t, "alice", "-- broker "+b1.URL+" lost, trying the next\n")
	screen.waitShown(t, "alice", "-- connected to broker "+b2.URL+"\n")
	if _, err := io.WriteString(w, "hello after failover\n"); err != nil {
		t.Fatal(err)
	}
	screen.waitShown(t, "alice", "<alice> hello after failover")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d; stderr:\n%s", code, errs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the node did not end with its input; screen:\n%s", screen.String())
	}
	shown := screen.String()
	for _, line := range []string{"lost, trying the next", "connected to broker"} {
		if n := strings.Count(shown, line); n != map[string]int{"lost, trying the next": 1, "connected to broker": 2}[line] {
			t.Errorf("%q shown %d times:\n%s", line, n, shown)
		}
	}
	if strings.Contains(shown, "reconnecting") {
		t.Errorf("the failover notice is not one line:\n%s", shown)
	}
}
