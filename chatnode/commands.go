package chatnode

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/session"
)

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

// roomList is "#a, #b" for rooms a and b (at least one room).
func roomList(rooms []string) string { return "#" + strings.Join(rooms, ", #") }

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
		c.sc.raw(helpText)
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
		c.dm(ctx, rest)
	case "/me":
		if rest == "" {
			c.sc.say("usage: /me ACTION")
			break
		}
		c.say(ctx, rest, wire.KindAction)
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
	sent := c.send(ctx, session.Outgoing{Room: c.current, Kind: kind, Body: text})
	if sent != nil && c.waitEcho {
		c.await(sent, c.s.WaitDelivered(sent.ID))
	}
}

// send hands o to the session and says what the user must know of it:
// not sent, or queued until the reconnect. It returns nil when not sent.
func (c *chat) send(ctx context.Context, o session.Outgoing) *session.Sent {
	sent, err := c.s.Send(ctx, o)
	if err != nil {
		c.sc.say("not sent: %v", err)
		return nil
	}
	if sent.Queued {
		c.sc.say("not connected: queued, it is sent after the reconnect")
	}
	return sent
}

// dm sends a private message (/msg NICK TEXT).
func (c *chat) dm(ctx context.Context, args string) {
	to, text, _ := strings.Cut(args, " ")
	if to == "" || strings.TrimSpace(text) == "" {
		c.sc.say("usage: /msg NICK TEXT")
		return
	}
	sent := c.send(ctx, session.Outgoing{To: to, Body: text})
	if sent == nil {
		return
	}
	show := func() {
		if sent.Err != nil {
			c.sc.say("private message to %s failed: %v", to, sent.Err)
			return
		}
		c.sc.raw(c.sc.stamp(c.sc.clock()) + " " + c.sc.paint("35", "[private] -> "+to+":") + " " + text)
	}
	if !c.waitEcho {
		go func() { <-sent.Done; show() }()
		return
	}
	c.await(sent, nil)
	show()
}

// await waits (bounded) for a sent line's PUBACK and its echo, if any.
func (c *chat) await(sent *session.Sent, echo <-chan struct{}) {
	t := time.NewTimer(c.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-sent.Done:
		if echo != nil {
			select {
			case <-echo:
			case <-t.C:
			}
		}
	case <-t.C:
	}
}
