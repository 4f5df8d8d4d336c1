package session

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// The node kill drill: a chat node (the real binary, a child process) is
// killed with SIGKILL at random moments while two publishers chat in its two
// rooms, and restarted each time on the same state dir. At the end every
// acknowledged message appears exactly once in what the node recorded across
// its runs, in room order: its screen in interactive mode, its "received"
// log lines in bench mode.
//
// DISTCHAT_NODE_KILLS sets the kills per mode (default 4).
func TestNodeKillDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the chatnode binary and kills it repeatedly")
	}
	kills := envCount(t, "DISTCHAT_NODE_KILLS", 4)
	bin := buildChatnode(t)
	for _, mode := range []string{"interactive", "bench"} {
		t.Run(mode, func(t *testing.T) { nodeKillDrill(t, bin, mode, kills) })
	}
}

var killRooms = []string{"k1", "k2"}

func buildChatnode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chatnode")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/distchat/distchat/chatnode/cmd/chatnode")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build chatnode: %v\n%s", err, out)
	}
	return bin
}

func nodeKillDrill(t *testing.T, bin, mode string, kills int) {
	br := brokertest.Start(t, brokertest.Config(t))
	obs := startNode(t, nodeConfig(t, br.URL, "obs", killRooms...))
	var pubs []*testNode
	for _, nick := range []string{"pa", "pb"} {
		pubs = append(pubs, startNode(t, nodeConfig(t, br.URL, nick, killRooms...)))
	}
	v := &victim{bin: bin, mode: mode, url: br.URL, dir: t.TempDir(), out: &seenLines{changed: make(chan struct{}, 1)}}
	v.start(t)
	obs.got.waitFor(t, 30*time.Second, "vic online", func(*collector) bool { // messages from before its first join are not its to show
		return slices.Contains(obs.Who(killRooms[0]), "vic") && slices.Contains(obs.Who(killRooms[1]), "vic")
	})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sent := make([][]string, len(pubs))
	for i, n := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i] = killLoad(ctx, t, n.Session)
		}()
	}
	for range kills {
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond) // a random moment, not a wait for an event
		v.kill(t)
		v.start(t)
	}
	stop()
	wg.Wait()
	want := map[string]bool{}
	for _, ids := range sent {
		for _, id := range ids {
			want[id] = true
		}
	}
	obs.got.waitFor(t, 30*time.Second, "the observer to see every acknowledged message", func(c *collector) bool {
		return shownAll(c.msgs, want)
	})
	seen := indexMessages(obs.got.messages())
	v.waitRecorded(t, seen, want)
	v.stop(t)
	recs := v.records(t, seen)
	checkDrill(t, "vic", recs, want)
	t.Logf("%s: %d kills, %d messages acknowledged, %d recorded by the node (%d with its own)",
		mode, kills, len(want), countFrom(recs, "pa", "pb"), len(recs))
}

// messageIndex finds a message by id, or by room and body.
type messageIndex struct {
	byID   map[string]Message
	byBody map[string]Message
}

func indexMessages(msgs []Message) messageIndex {
	ix := messageIndex{byID: map[string]Message{}, byBody: map[string]Message{}}
	for _, m := range msgs {
		ix.byID[m.Env.ID] = m
		ix.byBody[m.Env.Room+" "+m.Env.Body] = m
	}
	return ix
}

// killLoad sends from s to both rooms, about 100 messages a second, until
// ctx ends, and returns the ids of the acknowledged ones.
func killLoad(ctx context.Context, t *testing.T, s *Session) []string {
	var all []*Sent
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		m, err := s.Send(context.Background(), Outgoing{Room: killRooms[i%2], Body: fmt.Sprintf("%s %d", s.me, i)})
		if err != nil {
			t.Errorf("%s: send: %v", s.me, err)
			break
		}
		all = append(all, m)
	}
	var acked []string
	for _, m := range all {
		select {
		case <-m.Done:
			if m.Err == nil {
				acked = append(acked, m.ID)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: %s neither acknowledged nor failed", s.me, m.ID)
		}
	}
	return acked
}

// seenLines collects a child's output lines across its runs.
type seenLines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func (s *seenLines) add(line string) {
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *seenLines) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// victim is the chat node under test, run again and again on one state dir.
type victim struct {
	bin, mode, url, dir string
	out                 *seenLines // interactive: the screen
	cmd                 *exec.Cmd
	stdin               io.WriteCloser
	read                sync.WaitGroup
	stderr              strings.Builder
}

func (v *victim) logPath() string { return filepath.Join(v.dir, "vic.log") }

func (v *victim) start(t *testing.T) {
	t.Helper()
	args := []string{"-broker", v.url, "-nick", "vic", "-room", strings.Join(killRooms, ","), "-state", v.dir,
		"-gap-wait", "5s", "-log", v.logPath(), "-max-reconnect", "500ms"}
	if v.mode == "bench" {
		args = append([]string{"bench"}, append(args, "-count", "1", "-rate", "10", "-expect", "1000000000", "-linger", "10m")...)
	} else {
		args = append(args, "-history", "0")
	}
	cmd := exec.Command(v.bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if v.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &v.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chatnode: %v", err)
	}
	v.cmd = cmd
	v.read.Add(1)
	go func() {
		defer v.read.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v.mode == "interactive" {
				v.out.add(sc.Text())
			}
		}
	}()
	t.Cleanup(func() {
		if v.cmd == cmd {
			v.kill(t)
		}
	})
}

// kill sends SIGKILL and waits until the process and its output are done.
func (v *victim) kill(t *testing.T) {
	t.Helper()
	if err := v.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill chatnode: %v", err)
	}
	v.read.Wait()
	if err := v.cmd.Wait(); err != nil && !strings.Contains(err.Error(), "killed") {
		t.Errorf("chatnode: %v\n%s", err, v.stderr.String())
	}
	v.cmd = nil
}

// stop ends the last run cleanly: end of input, or SIGTERM for bench.
func (v *victim) stop(t *testing.T) {
	t.Helper()
	var err error
	if v.mode == "bench" {
		err = v.cmd.Process.Signal(syscall.SIGTERM)
	} else {
		err = v.stdin.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	v.read.Wait()
	if err := v.cmd.Wait(); err != nil && v.mode != "bench" {
		t.Errorf("chatnode exit: %v\n%s", err, v.stderr.String())
	}
	v.cmd = nil
}

var screenMsgLine = regexp.MustCompile(`^\d\d:\d\d:\d\d #(\S+) <(\S+)> (.*)$`)

// records reads what the node recorded across its runs, in order, as the
// messages they are.
func (v *victim) records(t *testing.T, ix messageIndex) []Message {
	t.Helper()
	var out []Message
	if v.mode == "interactive" {
		for _, l := range v.out.all() {
			sm := screenMsgLine.FindStringSubmatch(l)
			if sm == nil {
				continue
			}
			m, ok := ix.byBody[sm[1]+" "+sm[3]]
			if !ok {
				t.Errorf("screen line %q: no such message", l)
				continue
			}
			out = append(out, m)
		}
		return out
	}
	data, err := os.ReadFile(v.logPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		var r nodelog.Record
		if !strings.Contains(l, `"event":"received"`) || json.Unmarshal([]byte(l), &r) != nil || r.Duplicate {
			continue
		}
		out = append(out, Message{Env: wire.Envelope{ID: r.ID, From: r.From, Room: r.Room, RoomSeq: r.RoomSeq}, Conv: r.Room})
	}
	return out
}

// waitRecorded waits until the node has recorded every message in want.
func (v *victim) waitRecorded(t *testing.T, ix messageIndex, want map[string]bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond) // the log file has no event to wait on
	defer tick.Stop()
	for !shownAll(v.records(t, ix), want) {
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged messages not recorded within 30 s; stderr:\n%s", v.stderr.String())
		}
		select {
		case <-v.out.changed:
		case <-tick.C:
		}
	}
}

func countFrom(msgs []Message, from ...string) int {
	k := 0
	for _, m := range msgs {
		if slices.Contains(from, m.Env.From) {
			k++
		}
	}
	return k
}
