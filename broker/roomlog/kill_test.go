package roomlog_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/chatnode/wire"
)

const wait = 10 * time.Second

// startBroker runs the broker binary on a free port with dataDir and returns
// the process and its MQTT address, read from its "started" log line.
func startBroker(t *testing.T, bin, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "-tcp", "127.0.0.1:0", "-http", "", "-data", dataDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			if err := cmd.Process.Kill(); err != nil {
				t.Log(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Logf("broker stopped: %v", err) // killed on purpose
			}
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Event string `json:"event"`
				TCP   string `json:"tcp"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Event == "started" {
				addr <- line.TCP
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(wait):
		t.Fatal("the broker did not report its address")
	}
	return nil, ""
}

func connect(t *testing.T, addr, id string) paho.Client {
	t.Helper()
	return connectOpts(t, paho.NewClientOptions().AddBroker("tcp://"+addr).SetClientID(id).SetUsername(id).SetPassword(id+"-pw"))
}

func connectOpts(t *testing.T, o *paho.ClientOptions) paho.Client {
	t.Helper()
	o.SetProtocolVersion(4).SetAutoReconnect(false)
	id := o.ClientID
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// syncAll asks the room log for every message of conv after 0, following
// More, and returns their room sequence numbers.
func syncAll(t *testing.T, c paho.Client, user, conv string) []uint64 {
	t.Helper()
	replies := make(chan wire.SyncReply, 16)
	tok := c.Subscribe(wire.InboxTopic(user), 1, func(_ paho.Client, m paho.Message) {
		var r wire.SyncReply
		if err := json.Unmarshal(m.Payload(), &r); err == nil {
			replies <- r
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe inbox: %v", tok.Error())
	}
	var seqs []uint64
	after := uint64(0)
	for i := 0; ; i++ {
		req, err := json.Marshal(wire.SyncRequest{V: wire.Version, ReqID: fmt.Sprint(i), Conv: conv, AfterSeq: after})
		if err != nil {
			t.Fatal(err)
		}
		if tok := c.Publish(wire.SyncTopic(user), 1, false, req); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("sync request: %v", tok.Error())
		}
		select {
		case r := <-replies:
			if r.Error != "" {
				t.Fatalf("sync refused: %s", r.Error)
			}
			for _, m := range r.Messages {
				seqs = append(seqs, m.RoomSeq)
				after = m.RoomSeq
			}
			if !r.More {
				return seqs
			}
		case <-time.After(wait):
			t.Fatal("no sync reply")
		}
	}
}

// TestAcknowledgedSurvivesSIGKILL: the broker as a real process, killed with
// SIGKILL right after acknowledging publishes (Mochi PUBACKs
// before anything is stored). Every acknowledged message is in the room log
// after the restart, in order.
func TestAcknowledgedSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the broker binary")
	}
	bin := filepath.Join(t.TempDir(), "broker")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/distchat/distchat/broker/cmd/broker").CombinedOutput(); err != nil {
		t.Fatalf("build broker: %v\n%s", err, out)
	}
	data := t.TempDir()
	cmd, addr := startBroker(t, bin, data)
	pub := connect(t, addr, "alice")
	const n = 200
	for i := 1; i <= n; i++ {
		tok := pub.Publish(wire.RoomTopic("lobby", "alice"), 1, false, fmt.Sprintf("message %d", i))
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	// The last PUBACK is in: kill at once, no graceful anything.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("broker exit: %v, want killed", err)
	}
	_, addr = startBroker(t, bin, data)
	seqs := syncAll(t, connect(t, addr, "bob"), "bob", "lobby")
	if len(seqs) != n {
		t.Fatalf("after SIGKILL the log has %d of %d acknowledged messages", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("message %d has room_seq %d", i, s)
		}
	}
}
