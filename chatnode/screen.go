package chatnode

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

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

// newScreen starts the writer, which flushes when nothing more is queued
// or a line is waited for. Write errors mean the terminal went away: it
// keeps draining.
func newScreen(w io.Writer, clock func() time.Time, color bool) *screen {
	sc := &screen{lines: make(chan screenLine, 1024), done: make(chan struct{}), clock: clock, color: color}
	go func() {
		defer close(sc.done)
		bw := bufio.NewWriter(w)
		for l := range sc.lines {
			if _, err := bw.WriteString(l.text + "\n"); err == nil && (len(sc.lines) == 0 || l.done != nil) {
				_ = bw.Flush()
			}
			if l.done != nil {
				close(l.done)
			}
		}
		_ = bw.Flush()
	}()
	return sc
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
