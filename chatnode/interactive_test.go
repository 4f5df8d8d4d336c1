package chatnode

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestInteractiveGolden drives a piped session and compares the screen with
// testdata/interactive.golden (times come from a fixed clock).
func TestInteractiveGolden(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	script := strings.Join([]string{
		"/help",
		"hello world",
		"/me waves",
		"/join second",
		"/rooms",
		"/switch lobby",
		"/who",
		"/msg bob hi bob",
		"/frobnicate",
		"/switch nowhere",
		"/leave second",
		"",
		"/quit",
		"after quit is never read",
	}, "\n") + "\n"
	var out, errs bytes.Buffer
	logFile := filepath.Join(t.TempDir(), "alice.log")
	args := []string{"-broker", b.URL, "-nick", "alice", "-room", "lobby", "-log", logFile, "-gap-wait", "1m", "-history", "0"}
	clock := func() time.Time { return time.Date(2025, 1, 2, 12, 34, 56, 0, time.Local) }
	code := runInteractive(context.Background(), args, strings.NewReader(script), &out, &errs, interactiveOptions{clock: clock, waitEcho: true})
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, errs.String())
	}
	golden := filepath.Join("testdata", "interactive.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if out.String() != string(want) {
		t.Errorf("screen differs from %s:\n--- got\n%s\n--- want\n%s", golden, out.String(), want)
	}
	logData, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{`"event":"connected"`, `"event":"subscribed"`, `"event":"sent"`, `"event":"received"`, `"event":"unsubscribed"`, `"event":"shutdown"`, `"ts_ns":`, `"node":"alice"`} {
		if !bytes.Contains(logData, []byte(ev)) {
			t.Errorf("log lacks %s", ev)
		}
	}
	if bytes.Contains(out.Bytes(), []byte(`"event"`)) {
		t.Error("JSON log lines leaked onto the chat screen")
	}
}

func TestHelpAndBadFlags(t *testing.T) {
	var out, errs bytes.Buffer
	if code := Run(context.Background(), []string{"-h"}, strings.NewReader(""), &out, &errs); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	if !strings.Contains(errs.String(), "-password-file") || !strings.Contains(errs.String(), "interactive chat") {
		t.Errorf("-h does not explain the flags:\n%s", errs.String())
	}
	errs.Reset()
	if code := Run(context.Background(), []string{"-broker", "tcp://127.0.0.1:1", "-password", "s3cret"}, strings.NewReader(""), &out, &errs); code != 2 {
		t.Errorf("missing nick: exit %d, want 2", code)
	}
	if !strings.Contains(errs.String(), "nick: required") || strings.Contains(errs.String(), "s3cret") {
		t.Errorf("bad config message:\n%s", errs.String())
	}
}
