package chatnode

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/internal/syncbuf"
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
	if code := Main(context.Background(), []string{"-h"}, strings.NewReader(""), &out, &errs); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	if !strings.Contains(errs.String(), "-password-file") || !strings.Contains(errs.String(), "interactive chat") {
		t.Errorf("-h does not explain the flags:\n%s", errs.String())
	}
	errs.Reset()
	if code := Main(context.Background(), []string{"-broker", "tcp://127.0.0.1:1", "-password", "s3cret"}, strings.NewReader(""), &out, &errs); code != 2 {
		t.Errorf("missing nick: exit %d, want 2", code)
	}
	if !strings.Contains(errs.String(), "nick: required") || strings.Contains(errs.String(), "s3cret") {
		t.Errorf("bad config message:\n%s", errs.String())
	}
}

// seenScreen is a chat screen the test reads while the node writes it.
type seenScreen struct{ syncbuf.Buffer }

// waitShown waits until the screen shows text, or fails the test.
func (s *seenScreen) waitShown(t *testing.T, who, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's screen never showed %q; it shows:\n%s", who, text, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// person is one interactive node driven line by line.
type person struct {
	name   string
	in     *io.PipeWriter
	screen *seenScreen
	exit   chan int
}

func startPerson(t *testing.T, url, nick string) *person {
	t.Helper()
	r, w := io.Pipe()
	p := &person{name: nick, in: w, screen: &seenScreen{}, exit: make(chan int, 1)}
	var errs seenScreen
	args := []string{"-broker", url, "-nick", nick, "-room", "lobby", "-gap-wait", "1m", "-history", "0",
		"-log", filepath.Join(t.TempDir(), nick+".log")}
	clock := func() time.Time { return time.Date(2025, 1, 2, 12, 34, 56, 0, time.Local) }
	go func() {
		p.exit <- runInteractive(context.Background(), args, r, p.screen, &errs, interactiveOptions{clock: clock, waitEcho: true})
	}()
	t.Cleanup(func() {
		w.Close() // end of input: the node quits if it has not
		select {
		case <-p.exit:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not quit; stderr:\n%s", nick, errs.String())
		}
	})
	p.screen.waitShown(t, nick, "-- connected")
	return p
}

func (p *person) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatalf("%s types %q: %v", p.name, line, err)
	}
}

// quit types /quit and waits for a clean exit.
func (p *person) quit(t *testing.T) {
	t.Helper()
	p.typeLine(t, "/quit")
	select {
	case code := <-p.exit:
		if code != 0 {
			t.Fatalf("%s exited %d", p.name, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not quit", p.name)
	}
	p.exit <- 0 // for the cleanup
}

// TestTwoPeopleGolden: two interactive nodes in one room, driven step by
// step (each step waits for what it shows on the other screen): bob sees
// alice join, her message and action, her private message marked private,
// and her going offline; alice sees bob's private reply. Both screens are
// compared with testdata/two_people_*.golden.
func TestTwoPeopleGolden(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	bob := startPerson(t, b.URL, "bob")
	alice := startPerson(t, b.URL, "alice")
	bob.screen.waitShown(t, "bob", "alice joined #lobby")

	alice.typeLine(t, "hello bob")
	bob.screen.waitShown(t, "bob", "<alice> hello bob")
	alice.typeLine(t, "/me waves")
	bob.screen.waitShown(t, "bob", "* alice waves")
	alice.typeLine(t, "/msg bob psst")
	bob.screen.waitShown(t, "bob", "psst")
	bob.typeLine(t, "/msg alice hi alice")
	alice.screen.waitShown(t, "alice", "hi alice")
	bob.typeLine(t, "/who")
	bob.screen.waitShown(t, "bob", "-- in #lobby:")
	alice.quit(t)
	bob.screen.waitShown(t, "bob", "alice is offline")
	bob.quit(t)

	for _, p := range []*person{alice, bob} {
		golden := filepath.Join("testdata", "two_people_"+p.name+".golden")
		got := p.screen.String()
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update once to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s's screen differs from %s:\n--- got\n%s\n--- want\n%s", p.name, golden, got, want)
		}
	}
}

// TestPrivateConversations: /dms lists the private conversations with what
// is new since the last /dms, and /history @NICK N shows the last N private
// messages of both directions.
func TestPrivateConversations(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	bob := startPerson(t, b.URL, "bob")
	alice := startPerson(t, b.URL, "alice")
	alice.typeLine(t, "/msg bob one")
	alice.typeLine(t, "/msg bob two")
	bob.screen.waitShown(t, "bob", "[private] <alice> two")
	bob.typeLine(t, "/msg alice back")
	alice.screen.waitShown(t, "alice", "[private] <bob> back")
	bob.typeLine(t, "/dms")
	bob.screen.waitShown(t, "bob", "-- @alice: 2 new (/history @alice)")
	bob.typeLine(t, "/dms")
	bob.screen.waitShown(t, "bob", "-- @alice: 0 new (/history @alice)")
	bob.typeLine(t, "/history @alice 2")
	bob.screen.waitShown(t, "bob", "[private] (history) <alice> two")
	bob.screen.waitShown(t, "bob", "[private] -> alice: (history) back")
	if strings.Contains(bob.screen.String(), "(history) <alice> one") {
		t.Errorf("/history @alice 2 showed more than the last 2:\n%s", bob.screen.String())
	}
	bob.typeLine(t, "/history @")
	bob.screen.waitShown(t, "bob", "usage: /history @NICK [N]")
}
