package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/netwait"
)

// target is a broker under test: where it listens, and how to start it
// again on the same address with its data kept (for session tests).
type target struct {
	name    string
	addr    string
	restart func(t *testing.T) string
}

// Names of the targets, as the table in docs/broker.md shows them.
const (
	distchat  = "distchat"
	mosquitto = "mosquitto"
)

// testKeepAlive is the broker's longest keep-alive in these tests, for both
// brokers (limits.max_keep_alive, Mosquitto's max_keepalive).
const testKeepAlive = 60

// each runs check against every target as a subtest. known maps a target
// to the way it is known to break the statements check tests: the check
// must then fail there (and is reported, not failed), so a fix shows up as
// a test to update together with the table.
func each(t *testing.T, known map[string]string, check func(t *testing.T, tg *target)) {
	t.Helper()
	for _, start := range []func(*testing.T) *target{startDistchat, startMosquitto} {
		tg := start(t)
		if tg == nil {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			err := run(t, tg, check)
			why, isKnown := known[tg.name]
			switch {
			case err == nil && isKnown:
				t.Errorf("%s now conforms (known difference was: %s): update the test and docs/broker.md", tg.name, why)
			case err != nil && isKnown:
				t.Logf("known difference: %s: %v", why, err)
			case err != nil:
				t.Error(err)
			}
		})
	}
}

// startDistchat starts our broker in open mode (no users: every topic is
// allowed, the tests use topics outside chat/).
func startDistchat(t *testing.T) *target {
	t.Helper()
	cfg := brokertest.Config(t)
	cfg.HTTP = ""
	cfg.Limits.MaxKeepAlive = testKeepAlive * time.Second
	b := brokertest.Start(t, cfg)
	tg := &target{name: distchat, addr: b.Addr}
	tg.restart = func(t *testing.T) string {
		b.Close()
		nb := brokertest.Start(t, b.Config)
		b = nb
		return nb.Addr
	}
	return tg
}

// mosquittoPath finds the mosquitto binary (Debian installs it in
// /usr/sbin, often not on a user's PATH).
func mosquittoPath() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	return ""
}

// startMosquitto starts a Mosquitto on a free loopback port with a config
// written to a temporary directory, or returns nil (the test logs why)
// when the binary is not installed.
func startMosquitto(t *testing.T) *target {
	t.Helper()
	bin := mosquittoPath()
	if bin == "" {
		t.Log("mosquitto not installed (Debian package mosquitto; .ci/run installs it): the Mosquitto column is not checked")
		return nil
	}
	dir := t.TempDir()
	port, err := netwait.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	body := strings.Join([]string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"allow_anonymous true",
		"persistence true",
		"persistence_location " + dir + "/",
		"autosave_interval 0",
		fmt.Sprintf("max_keepalive %d", testKeepAlive),
		"log_dest stderr",
		"log_type error",
		"user " + runAs(), // as root, Mosquitto would drop to a user that cannot write dir
	}, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var cmd *exec.Cmd
	launch := func(t *testing.T) {
		cmd = exec.Command(bin, "-c", conf)
		cmd.Stderr = &testLog{t: t}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start mosquitto: %v", err)
		}
		c := cmd
		t.Cleanup(func() { stopMosquitto(c) })
		// Mosquitto binds after it starts, and says nothing when it has.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := netwait.Listening(ctx, addr, nil); err != nil {
			t.Fatalf("mosquitto: %v", err)
		}
	}
	launch(t)
	return &target{name: mosquitto, addr: addr, restart: func(t *testing.T) string {
		stopMosquitto(cmd) // SIGTERM: Mosquitto saves its persistence file
		launch(t)
		return addr
	}}
}

func stopMosquitto(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// runAs is the user running the tests, for Mosquitto's user option.
func runAs() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// testLog sends a process's output to t.Log.
type testLog struct{ t *testing.T }

func (w *testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
