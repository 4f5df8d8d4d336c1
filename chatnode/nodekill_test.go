package chatnode

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/session"
	"github.com/distchat/distchat/chatnode/wire"
	"github.com/distchat/distchat/config"
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
	kills := 4
	if v := os.Getenv("DISTCHAT_NODE_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("DISTCHAT_NODE_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
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
	obs := &observer{bySeq: map[string]uint64{}, changed: make(chan struct{}, 1)}
	obsSession := startSession(t, br.URL, "obs", obs.onEvent)
	var pubs []*session.Session
	for _, nick := range []string{"pa", "pb"} {
		pubs = append(pubs, startSession(t, br.URL, nick, nil))
	}
	v := &victim{bin: bin, mode: mode, url: br.URL, dir: t.TempDir(), out: &seenLines{changed: make(chan struct{}, 1)}}
	v.start(t)
	obs.waitOnline(t, obsSession, "vic") // messages from before its first join are not its to show
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sent := make([][]string, len(pubs))
	for i, s := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i] = killLoad(ctx, t, s)
		}()
	}
	for range kills {
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond) // a random moment, not a wait for an event
		v.kill(t)
		v.start(t)
	}
	stop()
	wg.Wait()
	var want []string
	for _, ids := range sent {
		want = append(want, ids...)
	}
	obs.waitAll(t, want)
	v.waitRecorded(t, obs, want)
	v.stop(t)
	recs := v.records(t, obs)
	checkRecords(t, recs, want, obs)
	t.Logf("%s: %d kills, %d messages acknowledged, %d recorded by the node (%d with its own)",
		mode, kills, len(want), countFrom(recs, "pa", "pb"), len(recs))
}

// killLoad sends from s to both rooms, about 100 messages a second, until
// ctx ends, and returns the ids of the acknowledged ones.
func killLoad(ctx context.Context, t *testing.T, s *session.Session) []string {
	var all []*session.Sent
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		m, err := s.Send(context.Background(), session.Outgoing{Room: killRooms[i%2], Body: fmt.Sprintf("%s %d", s.User(), i)})
		if err != nil {
			t.Errorf("%s: send: %v", s.User(), err)
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
			t.Errorf("%s: %s neither acknowledged nor failed", s.User(), m.ID)
		}
	}
	return acked
}

func startSession(t *testing.T, url, nick string, onEvent func(session.Event)) *session.Session {
	t.Helper()
	cfg := config.DefaultNode()
	cfg.Broker, cfg.Nick, cfg.Rooms, cfg.History = config.Brokers{url}, nick, killRooms, 0
	cfg.GapWait = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	s, err := session.New(cfg, l.WithField(wire.FieldNode, nick), session.Options{OnEvent: onEvent})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// observer learns every message's room sequence number and body.
type observer struct {
	mu      sync.Mutex
	bySeq   map[string]uint64 // id → room_seq
	byBody  map[string]string // body → id
	changed chan struct{}
}

func (o *observer) onEvent(e session.Event) {
	m, ok := e.(session.Message)
	if !ok {
		o.notify()
		return
	}
	o.mu.Lock()
	o.bySeq[m.Env.ID] = m.Env.RoomSeq
	if o.byBody == nil {
		o.byBody = map[string]string{}
	}
	o.byBody[m.Env.Room+" "+m.Env.Body] = m.Env.ID
	o.mu.Unlock()
	o.notify()
}

func (o *observer) notify() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// waitOnline waits until s sees user online in every room.
func (o *observer) waitOnline(t *testing.T, s *session.Session, user string) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		in := 0
		for _, r := range killRooms {
			if slices.Contains(s.Who(r), user) {
				in++
			}
		}
		if in == len(killRooms) {
			return
		}
		select {
		case <-o.changed:
		case <-deadline.C:
			t.Fatalf("%s not online in %v within 30 s", user, killRooms)
		}
	}
}

func (o *observer) waitAll(t *testing.T, ids []string) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		missing := 0
		for _, id := range ids {
			if _, ok := o.bySeq[id]; !ok {
				missing++
			}
		}
		o.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-o.changed:
		case <-deadline.C:
			t.Fatalf("the observer misses %d acknowledged messages", missing)
		}
	}
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

// record is one delivery the node recorded: a message id and its room.
type record struct{ id, room, from string }

var screenMsgLine = regexp.MustCompile(`^\d\d:\d\d:\d\d #(\S+) <(\S+)> (.*)$`)

// records reads what the node recorded across its runs, in order.
func (v *victim) records(t *testing.T, obs *observer) []record {
	t.Helper()
	var out []record
	if v.mode == "interactive" {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		for _, l := range v.out.all() {
			m := screenMsgLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			id, ok := obs.byBody[m[1]+" "+m[3]]
			if !ok {
				t.Errorf("screen line %q: no such message", l)
				continue
			}
			out = append(out, record{id: id, room: m[1], from: m[2]})
		}
		return out
	}
	data, err := os.ReadFile(v.logPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		var r receivedRecord
		if !strings.Contains(l, `"event":"received"`) || json.Unmarshal([]byte(l), &r) != nil || r.Duplicate {
			continue
		}
		out = append(out, record{id: r.ID, room: r.Room, from: r.From})
	}
	return out
}

type receivedRecord struct {
	ID, Room, From string
	Duplicate      bool
}

// waitRecorded waits until the node has recorded every id in want.
func (v *victim) waitRecorded(t *testing.T, obs *observer, want []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond) // the log file has no event to wait on
	defer tick.Stop()
	for {
		got := map[string]bool{}
		for _, r := range v.records(t, obs) {
			got[r.id] = true
		}
		missing := 0
		for _, id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			if os.Getenv("DISTCHAT_DRILL_DEBUG") != "" {
				v.debugMissing(t, obs, want, got)
			}
			t.Fatalf("%d of %d acknowledged messages not recorded within 30 s; stderr:\n%s", missing, len(want), v.stderr.String())
		}
		select {
		case <-v.out.changed:
		case <-tick.C:
		}
	}
}

// checkRecords asserts every wanted message recorded, none twice, and each
// room's messages in room order.
func checkRecords(t *testing.T, recs []record, want []string, obs *observer) {
	t.Helper()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	n := map[string]int{}
	last := map[string]uint64{}
	for _, r := range recs {
		n[r.id]++
		if n[r.id] == 2 {
			t.Errorf("message %s recorded twice", r.id)
		}
		seq := obs.bySeq[r.id]
		if seq != 0 && seq <= last[r.room] {
			t.Errorf("in %s, room_seq %d recorded after %d", r.room, seq, last[r.room])
		}
		last[r.room] = max(last[r.room], seq)
	}
	for _, id := range want {
		if n[id] == 0 {
			t.Errorf("acknowledged message %s never recorded", id)
		}
	}
}

func countFrom(recs []record, from ...string) int {
	k := 0
	for _, r := range recs {
		for _, f := range from {
			if r.from == f {
				k++
			}
		}
	}
	return k
}

func (v *victim) debugMissing(t *testing.T, obs *observer, want []string, got map[string]bool) {
	data, _ := os.ReadFile(v.logPath())
	k := 0
	for _, id := range want {
		if got[id] || k > 5 {
			continue
		}
		k++
		obs.mu.Lock()
		t.Logf("missing %s room_seq %d", id, obs.bySeq[id])
		obs.mu.Unlock()
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, id) {
				t.Logf("  %s", l)
			}
		}
	}
	st, _ := os.ReadFile(filepath.Join(v.dir, "chatnode-vic.json"))
	t.Logf("state %s", st)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "gap") || strings.Contains(l, `"sync"`) || strings.Contains(l, "connected") || strings.Contains(l, "shutdown") {
			t.Logf("  %s", l)
		}
	}
}
