package session

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestBrokerRestartMidLoad restarts the broker (graceful, same port and data
// directory) while one node publishes to two others: nothing may be lost.
func TestBrokerRestartMidLoad(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	tx := startNode(t, nodeConfig(t, b.URL, "tx", "load"))
	rx1 := startNode(t, nodeConfig(t, b.URL, "rx1", "load"))
	rx2 := startNode(t, nodeConfig(t, b.URL, "rx2", "load"))
	waitOnline(t, "load", tx, rx1, rx2)
	if !hasRoomLog(t, tx) {
		t.Fatal("the test broker's room log did not answer: zero loss across a restart is the room log's promise")
	}
	const count = 1500
	errc := make(chan error, 1)
	go func() {
		var last *Sent
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; i < count; i++ {
			<-tick.C
			s, err := tx.Send(context.Background(), Outgoing{Room: "load", Body: "x", Size: 200})
			if err != nil {
				errc <- err
				return
			}
			last = s
		}
		<-last.Done
		errc <- last.Err
	}()
	rx1.got.waitFor(t, 20*time.Second, "a third of the load", func(c *collector) bool { return len(c.msgs) >= count/3 })
	b.Close()
	brokertest.Start(t, b.Config)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]int{{"tx", "load"}: count}
	for _, n := range []*testNode{rx1, rx2, tx} {
		n.got.waitFor(t, 30*time.Second, n.cfg.Nick+" to get all", func(c *collector) bool { return len(c.msgs) >= count })
		checkComplete(t, n, want)
	}
}

// startMosquitto runs the Debian mosquitto binary on a free loopback port
// with a generated config, or skips the test when it is not installed.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Skip("mosquitto is not installed (apt-get install mosquitto): skipping the cross-broker test")
		}
		bin = "/usr/sbin/mosquitto"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	body := "listener " + strconv.Itoa(port) + " 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill mosquitto: %v", err)
		}
		<-exited
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			return "tcp://" + addr
		}
		select {
		case err := <-exited:
			t.Fatalf("mosquitto exited: %v\n%s", err, out.String())
		case <-retry.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v\n%s", addr, err, out.String())
		}
	}
}

func TestThreeNodesMosquitto(t *testing.T) {
	url := startMosquitto(t)
	n := threeNodes(t, url)
	// Mosquitto answers no sync request: the node says so once and goes on.
	n.got.waitFor(t, 10*time.Second, "the no-room-log notice", func(c *collector) bool { return len(c.infos) >= 1 })
	send(t, n, "r1", 1)
	n.got.waitFor(t, 10*time.Second, "one more message", func(c *collector) bool { return len(c.msgs) >= 801 })
	n.got.mu.Lock()
	infos := slices.Clone(n.got.infos)
	n.got.mu.Unlock()
	for _, s := range infos[1:] {
		t.Errorf("more than one notice: %q", s)
	}
	if !strings.Contains(infos[0], "no room log") {
		t.Errorf("notice %q does not say there is no room log", infos[0])
	}
}

// hasRoomLog waits (at most 10 s: a loaded CI machine can be slow to answer)
// until n has heard from the broker's room log.
func hasRoomLog(t *testing.T, n *testNode) bool {
	t.Helper()
	ch := make(chan roomLogState, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.p.do(func() { ch <- n.p.roomLog })
		if v := <-ch; v == roomLogPresent || time.Now().After(deadline) {
			return v == roomLogPresent
		}
		tick := time.NewTimer(20 * time.Millisecond)
		<-tick.C
	}
}
