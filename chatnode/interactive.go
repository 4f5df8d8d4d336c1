package chatnode

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"sync"
	"time"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session"
	"github.com/distchat/distchat/config"
)

// interactiveOptions are knobs for tests: a fixed clock and boot for
// golden screens, and waiting for each sent line's echo before the next.
type interactiveOptions struct {
	clock    func() time.Time
	waitEcho bool
	boot     int64
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
	// statusMu guards connects and toldReconnecting, which paho's
	// goroutines report into; it is held while the line is shown, so lines
	// come in the order they were decided. No lock is taken under it.
	statusMu         sync.Mutex
	connects         int
	toldReconnecting bool // the current outage was shown already
	// stopWaiting ends the wait for the first connection once its failure
	// is shown (set before the session starts).
	stopWaiting context.CancelFunc
}

func runInteractive(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, opt interactiveOptions) int {
	var cfg config.Node
	fs := flag.NewFlagSet("chatnode", flag.ContinueOnError)
	if err := loadNode(fs, args, &cfg, stderr, usageHead, config.DefaultNode()); err != nil {
		return configError(err, stderr)
	}
	log, closeLog, err := newLogger(cfg, stderr, interactiveStderr(cfg, isTerminal(stderr)))
	if err != nil {
		return fail(stderr, err)
	}
	defer closeLog()
	clock := opt.clock
	if clock == nil {
		clock = time.Now
	}
	sc := newScreen(stdout, clock, isTerminal(stdout))
	defer sc.close()
	c := &chat{sc: sc, me: cfg.User, cfg: cfg, waitEcho: opt.waitEcho}
	// A message is shown when OnEvent returns (screen.shown), so its
	// position is journalled then: a kill -9 shows nothing twice.
	s, err := session.New(cfg, log, session.Options{OnEvent: c.onEvent, Boot: opt.boot, Record: session.RecordJournal})
	if err != nil {
		return fail(stderr, err)
	}
	c.s = s
	sc.say("distchat as %s; /help lists the commands", cfg.Nick)
	if len(cfg.Rooms) > 0 {
		c.current = cfg.Rooms[0]
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
// ends badly.
func (c *chat) end(s *session.Session) int {
	n := closeSession(s, c.cfg.ConnectTimeout)
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

// loop reads lines until /quit, end of input, the broker's refusal or ctx
// ends (SIGINT/SIGTERM). Input is read ahead, so input ending before the
// node ever connected ends it instead of waiting for a silent broker.
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
// outage; with a broker list it names the brokers (the failover notice).
func (c *chat) showStatus(e session.Status) {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	sc, several := c.sc, len(c.cfg.Broker) > 1
	switch {
	case e.Connected:
		c.connects++
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
	case several:
		sc.say("broker %s lost, trying the next", e.Broker)
	default:
		sc.say("connection lost; reconnecting…")
	}
	c.toldReconnecting = !e.Connected
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
