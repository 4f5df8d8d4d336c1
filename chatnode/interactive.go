package chatnode

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session"
	"github.com/distchat/distchat/config"
)

// interactiveOptions are knobs for tests: a fixed clock for golden screens and
// waiting for each sent line's echo before reading the next one.
type interactiveOptions struct {
	clock    func() time.Time
	waitEcho bool
	boot     int64
}

const helpText = `commands:
  TEXT              say TEXT in the current room
  /join ROOM        join ROOM and make it current
  /leave [ROOM]     leave ROOM (default: the current room)
  /switch ROOM      make a joined ROOM current
  /rooms            list joined rooms
  /who [ROOM]       who is online (in ROOM)
  /msg NICK TEXT    private message to NICK
  /me ACTION        say an action: * you ACTION
  /history [N]      show the last N messages of the current room
  /history @NICK [N] the last N private messages between you and NICK
  /dms              your private conversations, with messages new since the last /dms
  /quit             leave (also end of input, Ctrl-D)
  /help             this list`

// screen is the one goroutine that writes to the terminal, so lines from the
// network and from commands never interleave inside a line.
type screen struct {
	lines chan screenLine
	done  chan struct{}
	clock func() time.Time
	color bool
}

// screenLine is one line to write; done, if set, is closed once the line is
// written out (flushed).
type screenLine struct {
	text string
	done chan struct{}
}

func newScreen(w io.Writer, clock func() time.Time, color bool) *screen {
	sc := &screen{lines: make(chan screenLine, 1024), done: make(chan struct{}), clock: clock, color: color}
	go func() {
		defer close(sc.done)
		bw := bufio.NewWriter(w)
		for l := range sc.lines {
			sc.write(bw, l)
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}()
	return sc
}

// write writes one line, flushing when nothing more is queued or the line
// is waited for.
func (sc *screen) write(bw *bufio.Writer, l screenLine) {
	if l.done != nil {
		defer close(l.done)
	}
	if _, err := bw.WriteString(l.text + "\n"); err != nil {
		return // the terminal went away; keep draining
	}
	if len(sc.lines) == 0 || l.done != nil {
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

func (sc *screen) stamp(t time.Time) string { return t.Format("15:04:05") }

// say prints a status line, "-- text", stamped with the current time.
func (sc *screen) say(format string, a ...any) {
	sc.lines <- screenLine{text: sc.stamp(sc.clock()) + " " + sc.paint("2", "-- "+fmt.Sprintf(format, a...))}
}

func (sc *screen) raw(text string) { sc.lines <- screenLine{text: text} }

// shown writes text and returns once it is written out: a message counts as
// shown (and its position is saved, session.RecordJournal) only then.
func (sc *screen) shown(text string) {
	done := make(chan struct{})
	sc.lines <- screenLine{text: text, done: done}
	<-done
}

func (sc *screen) close() {
	close(sc.lines)
	<-sc.done
}

// paint wraps s in an ANSI colour when writing to a terminal.
func (sc *screen) paint(code, s string) string {
	if !sc.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// chat is one interactive session: input commands on one side, session
// events on the other, both printing through the screen.
type chat struct {
	s        *session.Session
	sc       *screen
	me       string
	current  string
	cfg      config.Node
	waitEcho bool
	// statusMu guards connects and toldReconnecting: paho reports a lost
	// connection, the reconnect attempts and the new connection from
	// goroutines of their own. It is held while the line is shown, so the
	// lines come in the order they were decided.
	statusMu sync.Mutex
	connects int
	// toldReconnecting: "reconnecting…" (or, with a broker list, the
	// failover line) was shown for the current outage.
	toldReconnecting bool
	// stopWaiting ends the wait for the first connection once its failure
	// is shown (set before the session starts).
	stopWaiting context.CancelFunc
}

func runInteractive(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, opt interactiveOptions) int {
	var cfg config.Node
	fs := flag.NewFlagSet("chatnode", flag.ContinueOnError)
	if err := loadNode(fs, args, &cfg, stderr, usageHead); err != nil {
		return configError(err, stderr)
	}
	log, closeLog, err := newLogger(cfg, stderr, interactiveStderr(cfg, isTerminal(stderr)))
	if err != nil {
		fmt.Fprintf(stderr, "chatnode: %v\n", err)
		return 1
	}
	defer closeLog()
	clock := opt.clock
	if clock == nil {
		clock = time.Now
	}
	sc := newScreen(stdout, clock, isTerminal(stdout))
	defer sc.close()
	c := &chat{sc: sc, me: cfg.User, cfg: cfg, waitEcho: opt.waitEcho}
	if len(cfg.Rooms) > 0 {
		c.current = cfg.Rooms[0]
	}
	// A message is shown when OnEvent returns (screen.shown), so its
	// position is journalled then: a kill -9 shows nothing twice.
	s, err := session.New(cfg, log, session.Options{OnEvent: c.onEvent, Boot: opt.boot, Record: session.RecordJournal})
	if err != nil {
		fmt.Fprintf(stderr, "chatnode: %v\n", err)
		return 1
	}
	c.s = s
	sc.say("distchat as %s; /help lists the commands", cfg.Nick)
	if len(cfg.Rooms) > 0 {
		sc.say("rooms %s; current #%s", roomList(cfg.Rooms), c.current)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	c.stopWaiting = cancel
	s.Start(ctx)
	if err := s.WaitConnected(wctx); err != nil && ctx.Err() == nil && s.Err() == nil {
		sc.say("not connected yet (reconnecting…); what you type is queued")
	}
	cancel()
	c.loop(ctx, stdin, s.Refused())
	return c.end(s)
}

// end closes the session and returns the exit code, saying why the node
// ends badly: refused by the broker, never connected, messages unacknowledged.
func (c *chat) end(s *session.Session) int {
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout(c.cfg))
	defer cancel()
	n := s.Close(sctx)
	code := exitOK
	switch err := s.Err(); {
	case errors.Is(err, session.ErrRefused):
		c.sc.say("stopped: the broker refused the connection") // the reason was shown as it came
		code = exitNoBroker
	case !s.EverConnected():
		why := "no answer from broker " + c.cfg.Broker.String()
		if err != nil {
			why = err.Error()
		}
		c.sc.say("never connected: %s", why)
		code = exitNoBroker
	case n > 0:
		c.sc.say("%d message(s) not acknowledged by the broker before the exit; they may not have been sent", n)
		code = exitIncomplete
	}
	c.sc.say("bye")
	return code
}

func roomList(rooms []string) string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = "#" + r
	}
	return strings.Join(out, ", ")
}

// loop reads lines until /quit, end of input, the broker's refusal or ctx
// ends (SIGINT/SIGTERM). Input is read ahead (inputAhead lines), so its end
// is seen while a line waits for the first connection: input that ends
// before the node ever connected ends the node, instead of waiting for a
// broker that may never answer.
func (c *chat) loop(ctx context.Context, stdin io.Reader, refused <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan string, inputAhead)
	go func() {
		defer close(lines)
		defer func() {
			if !c.s.EverConnected() {
				cancel()
			}
		}()
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			c.sc.say("input ends: %v (lines are limited to 1 MiB)", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refused:
			return
		case l, ok := <-lines:
			if !ok || !c.command(ctx, l) {
				return
			}
		}
	}
}

// inputAhead is how many input lines are read ahead of the one running.
const inputAhead = 256

// command runs one input line; it returns false for /quit.
func (c *chat) command(ctx context.Context, line string) bool {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return true
	}
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		c.say(ctx, strings.TrimPrefix(line, "/"), wire.KindMessage)
		return true
	}
	cmd, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch cmd {
	case "/quit", "/exit":
		return false
	case "/help":
		for _, l := range strings.Split(helpText, "\n") {
			c.sc.raw(l)
		}
	case "/join":
		c.join(rest)
	case "/leave", "/part":
		c.leave(rest)
	case "/switch":
		c.switchTo(rest)
	case "/rooms":
		c.rooms()
	case "/who":
		c.who(rest)
	case "/msg":
		c.msg(ctx, rest)
	case "/me":
		c.action(ctx, rest)
	case "/history":
		c.history(rest)
	case "/dms":
		c.dms(ctx)
	default:
		c.sc.say("unknown command %s; /help lists the commands", cmd)
	}
	return true
}

// switchTo makes a joined room current (/switch ROOM).
func (c *chat) switchTo(room string) {
	if room == "" {
		c.sc.say("usage: /switch ROOM (one of /rooms)")
		return
	}
	if !slices.Contains(c.s.Rooms(), room) {
		c.sc.say("not in #%s: /join %s first", room, room)
		return
	}
	c.current = room
	c.sc.say("current room #%s", room)
}

// rooms lists the joined rooms and the current one (/rooms).
func (c *chat) rooms() {
	rooms := c.s.Rooms()
	if len(rooms) == 0 {
		c.sc.say("no rooms: /join ROOM")
		return
	}
	c.sc.say("rooms %s; current #%s", roomList(rooms), c.current)
}

// who lists who is online in room, the current one by default (/who).
func (c *chat) who(room string) {
	if room == "" {
		room = c.current
	}
	users := c.s.Who(room)
	if c.s.Connected() && (room == "" || slices.Contains(c.s.Rooms(), room)) && !slices.Contains(users, c.me) {
		users = append(users, c.me) // our own presence may still be on its way back
		slices.Sort(users)
	}
	where := "online"
	if room != "" {
		where = "in #" + room
	}
	if len(users) == 0 {
		c.sc.say("nobody %s", where)
		return
	}
	c.sc.say("%s: %s", where, strings.Join(users, ", "))
}

// msg sends a private message (/msg NICK TEXT).
func (c *chat) msg(ctx context.Context, args string) {
	to, text, _ := strings.Cut(args, " ")
	if to == "" || strings.TrimSpace(text) == "" {
		c.sc.say("usage: /msg NICK TEXT")
		return
	}
	c.dm(ctx, to, text)
}

// action says an action in the current room (/me ACTION).
func (c *chat) action(ctx context.Context, text string) {
	if text == "" {
		c.sc.say("usage: /me ACTION")
		return
	}
	c.say(ctx, text, wire.KindAction)
}

// history shows the last N messages of the current room, or with @NICK of
// the private conversation with NICK (both directions).
func (c *chat) history(args string) {
	conv := c.current
	if peer, ok := strings.CutPrefix(args, "@"); ok {
		peer, args, _ = strings.Cut(peer, " ")
		if err := wire.ValidateName("nick", peer); err != nil {
			c.sc.say("usage: /history @NICK [N] (%v)", err)
			return
		}
		conv = wire.DMConversation(c.me, peer)
	}
	n := c.cfg.History
	if args = strings.TrimSpace(args); args != "" {
		v, err := strconv.Atoi(args)
		if err != nil || v < 1 {
			c.sc.say("usage: /history [@NICK] [N] with N ≥ 1")
			return
		}
		n = v
	}
	if conv == "" {
		c.sc.say("join a room first: /join ROOM (or /history @NICK)")
		return
	}
	c.s.History(conv, max(n, 1))
}

// dms lists the private conversations: each peer and how many of the
// peer's messages were shown since the last /dms.
func (c *chat) dms(ctx context.Context) {
	list := c.s.DMs(ctx)
	if len(list) == 0 {
		c.sc.say("no private conversations")
		return
	}
	for _, d := range list {
		c.sc.say("@%s: %d new (/history @%s)", d.Peer, d.Unread, d.Peer)
	}
}

func (c *chat) join(room string) {
	if err := wire.ValidateName("room", room); err != nil {
		c.sc.say("usage: /join ROOM (%v)", err)
		return
	}
	already := slices.Contains(c.s.Rooms(), room)
	if err := c.s.Join(room); err != nil {
		c.sc.say("%v", err)
		return
	}
	c.current = room
	if already {
		c.sc.say("already in #%s; now current", room)
		return
	}
	c.sc.say("joined #%s (current)", room)
}

func (c *chat) leave(room string) {
	if room == "" {
		room = c.current
	}
	if room == "" {
		c.sc.say("usage: /leave ROOM")
		return
	}
	if err := c.s.Leave(room); err != nil {
		c.sc.say("%v", err)
		return
	}
	c.sc.say("left #%s", room)
	if room == c.current {
		c.current = ""
		if rooms := c.s.Rooms(); len(rooms) > 0 {
			c.current = rooms[0]
			c.sc.say("current room #%s", c.current)
		}
	}
}

func (c *chat) say(ctx context.Context, text, kind string) {
	if c.current == "" {
		c.sc.say("join a room first: /join ROOM")
		return
	}
	sent, err := c.s.Send(ctx, session.Outgoing{Room: c.current, Kind: kind, Body: text})
	if err != nil {
		c.sc.say("not sent: %v", err)
		return
	}
	if sent.Queued {
		c.sc.say("not connected: queued, it is sent after the reconnect")
	}
	if c.waitEcho {
		c.await(sent, c.s.WaitDelivered(sent.ID))
	}
}

func (c *chat) dm(ctx context.Context, to, text string) {
	sent, err := c.s.Send(ctx, session.Outgoing{To: to, Body: text})
	if err != nil {
		c.sc.say("not sent: %v", err)
		return
	}
	if sent.Queued {
		c.sc.say("not connected: queued, it is sent after the reconnect")
	}
	show := func() {
		if sent.Err != nil {
			c.sc.say("private message to %s failed: %v", to, sent.Err)
			return
		}
		c.sc.raw(c.sc.stamp(c.sc.clock()) + " " + c.sc.paint("35", "[private] -> "+to+":") + " " + text)
	}
	if c.waitEcho {
		c.await(sent, nil)
		show()
		return
	}
	go func() {
		<-sent.Done
		show()
	}()
}

// await waits (bounded) for a sent line's PUBACK and its echo.
func (c *chat) await(sent *session.Sent, echo <-chan struct{}) {
	t := time.NewTimer(c.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-sent.Done:
	case <-t.C:
		return
	}
	if echo == nil {
		return
	}
	select {
	case <-echo:
	case <-t.C:
	}
}

// onEvent formats session events for the screen.
func (c *chat) onEvent(e session.Event) {
	sc := c.sc
	switch e := e.(type) {
	case session.Message:
		c.showMessage(e)
	case session.Status:
		c.showStatus(e)
	case session.PresenceChange:
		if e.Presence.User == c.me || e.Retained {
			return
		}
		for _, r := range e.Joined {
			sc.say("%s joined #%s", e.Presence.User, r)
		}
		for _, r := range e.Left {
			sc.say("%s left #%s", e.Presence.User, r)
		}
		if e.Presence.Status == wire.Offline {
			sc.say("%s is offline", e.Presence.User)
		}
	case session.Info:
		sc.say("%s", e.Text)
	case session.ConnectFailed:
		if e.Final {
			sc.say("%v", e.Err)
			return
		}
		sc.say("%v; still trying in the background, what you type is queued", e.Err)
		c.stopWaiting()
	}
}

// showStatus tells the user of a change of the connection, once per
// outage. With a broker list the lost broker and the one reached are named:
// that is the failover notice.
func (c *chat) showStatus(e session.Status) {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	sc, several := c.sc, len(c.cfg.Broker) > 1
	switch {
	case e.Connected:
		c.connects++
		c.toldReconnecting = false
		switch {
		case several:
			sc.say("connected to broker %s", e.Broker)
		case c.connects == 1:
			sc.say("connected")
		default:
			sc.say("reconnected")
		}
	case e.Reconnecting:
		// paho reports every attempt; the user was told once already.
		if !c.toldReconnecting && !several { // the failover line says it
			sc.say("reconnecting…")
		}
		c.toldReconnecting = true
	case several:
		sc.say("broker %s lost, trying the next", e.Broker)
		c.toldReconnecting = true
	default:
		sc.say("connection lost; reconnecting…")
		c.toldReconnecting = true
	}
}

func (c *chat) showMessage(m session.Message) {
	sc := c.sc
	at := sc.clock()
	if m.Via == nodelog.ViaHistory {
		at = time.Unix(0, m.Env.SentNS)
	}
	who := sc.paint("1", "<"+m.Env.From+">")
	if m.Env.Kind == wire.KindAction {
		who = sc.paint("1", "* "+m.Env.From)
	}
	where := sc.paint("36", "#"+m.Env.Room)
	if m.Private {
		if m.Env.From == c.me {
			where, who = sc.paint("35", "[private] -> "+m.Env.To+":"), ""
		} else {
			where = sc.paint("35", "[private]")
		}
	}
	line := sc.stamp(at) + " " + where
	if m.Via == nodelog.ViaHistory {
		line += " " + sc.paint("2", "(history)")
	}
	if who != "" {
		line += " " + who
	}
	sc.shown(line + " " + sanitize(m.Env.Body))
}

// sanitize keeps one message on one line and strips terminal escapes that
// another user could use to redraw someone's screen.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}
