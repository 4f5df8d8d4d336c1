// Package chatnode is the distchat chat node: an interactive, line-based chat
// client (the default) and a headless load generator (`chatnode bench`), both
// on the same MQTT session layer (package session), so the load runs measure
// exactly the path people chat on.
package chatnode

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/jsonlog"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session"
	"github.com/distchat/distchat/config"
)

var usageHead = `chatnode: a distchat chat node.

  chatnode [flags]          interactive chat on stdin/stdout (stdin may be piped; end of input = /quit)
  chatnode bench [flags]    headless load: publish at a rate, receive everything, print a summary
  chatnode web [flags]      serve the chat as a web page (chatnode web -h)

Settings come from -config FILE (YAML, keys as in config.Node), then DISTCHAT_* environment
variables (e.g. DISTCHAT_BROKER, DISTCHAT_NICK), then flags. The password is never logged.
` + interactiveExitCodes + `
Flags:
`

var interactiveExitCodes = fmt.Sprintf(exitCodesHelp, "", " before its input ended")

// Main is the chat node's main, as broker.Main and analysis.Main are: it
// returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && args[0] == "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "web":
		return runWeb(ctx, args[1:], stdout, stderr)
	}
	return runInteractive(ctx, args, stdin, stdout, stderr, interactiveOptions{})
}

// OneProc reports whether the node for these arguments runs best on one
// processor: its work per message is a chain of small goroutine hand-offs
// (paho's reader, router and writer, the node's pipeline), which cost no
// thread wake-up there (make bench-nodes, docs/chatnode.md). The web mode
// serves many browsers at once and keeps Go's default.
func OneProc(args []string) bool { return len(args) == 0 || args[0] != "web" }

// bindNode binds the flags every mode shares to the fields of cfg.
func bindNode(fs *flag.FlagSet, cfg *config.Node) {
	config.ListVar(fs, (*[]string)(&cfg.Broker), "broker", "MQTT broker `URL` (tcp://HOST:PORT); several, comma-separated: the brokers of a cluster, tried in order, the next on the loss of one")
	fs.StringVar(&cfg.Nick, "nick", cfg.Nick, "your `name` (also the MQTT username unless -user is given)")
	fs.StringVar(&cfg.User, "user", cfg.User, "MQTT `username` (default: the nick)")
	fs.StringVar(&cfg.Password, "password", cfg.Password, "MQTT `password` (prefer -password-file)")
	fs.StringVar(&cfg.PasswordFile, "password-file", cfg.PasswordFile, "read the MQTT password from `file`")
	config.ListVar(fs, &cfg.Rooms, "room", "`room` to join (repeatable or comma-separated; the first is current)")
	fs.StringVar(&cfg.ClientID, "client-id", cfg.ClientID, "MQTT client `id` (default <user>-<device>, the device id kept in -state)")
	fs.StringVar(&cfg.Log, "log", cfg.Log, "also write the JSON-lines log to `file` (appended)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level`: debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log `format`: json or text")
	fs.StringVar(&cfg.StateDir, "state", cfg.StateDir, "`dir` keeping this device's id and last room sequence per conversation (catch-up; one dir per device)")
	fs.StringVar(&cfg.Run, "run", cfg.Run, "run `label` written into every log line")
	fs.IntVar(&cfg.Window, "window", cfg.Window, "QoS 1 publishes awaiting PUBACK at most (`n`, 1..1000)")
	fs.IntVar(&cfg.History, "history", cfg.History, "messages of history shown on join (`n`)")
	fs.IntVar(&cfg.MaxPayload, "max-payload", cfg.MaxPayload, "largest message sent, in `bytes`")
	fs.DurationVar(&cfg.KeepAlive, "keep-alive", cfg.KeepAlive, "MQTT keep-alive `interval`")
	fs.DurationVar(&cfg.MaxReconnectInterval, "max-reconnect", cfg.MaxReconnectInterval, "longest reconnect back-off `interval`")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "bound of one connection `attempt`")
	fs.DurationVar(&cfg.GapWait, "gap-wait", cfg.GapWait, "hold back messages after a room sequence gap at most this `long`")
	fs.DurationVar(&cfg.StallFailover, "stall-failover", cfg.StallFailover, "with several brokers: leave one on which a publish waits this `long` for its PUBACK")
}

// loadNode parses args into a validated node configuration over defaults;
// flag.ErrHelp after printing usage for -h.
func loadNode(fs *flag.FlagSet, args []string, cfg *config.Node, stderr io.Writer, head string, defaults config.Node) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, head)
		fs.PrintDefaults()
	}
	*cfg = defaults // so -h shows the defaults; Load applies them again under file and environment
	bindNode(fs, cfg)
	if err := config.Load(fs, args, cfg, defaults); err != nil {
		return err
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return fmt.Errorf("password file: %w", err)
		}
		cfg.Password = strings.TrimSpace(string(b))
	}
	return nil
}

// configError prints a configuration problem as clear lines and returns the
// exit code (exitOK for -h, else exitUsage).
func configError(err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "chatnode: %s\n", line)
	}
	fmt.Fprintln(stderr, "chatnode: -h lists the flags")
	return exitUsage
}

// problem is one check of a configuration: its line when bad, else nil.
// errors.Join drops the nils, so one run shows every mistake of a command
// line at once.
func problem(bad bool, msg string) error {
	if bad {
		return errors.New(msg)
	}
	return nil
}

// closeSession closes s, giving its in-flight publishes and its offline
// presence d at most, and returns how many publishes stayed unacknowledged.
func closeSession(s *session.Session, d time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Close(ctx)
}

// tsHook stamps ts_ns on every text log line, so the analysis orders
// several nodes' lines without parsing RFC 3339 times (the JSON formatter
// writes it itself: jsonlog.Formatter.TimeNSKey).
type tsHook struct{}

func (tsHook) Levels() []logrus.Level { return logrus.AllLevels }
func (tsHook) Fire(e *logrus.Entry) error {
	e.Data[nodelog.FieldTSNS] = e.Time.UnixNano()
	return nil
}

// warningsHook copies warnings and errors to another writer (stderr).
type warningsHook struct {
	w   io.Writer
	fmt logrus.Formatter
}

func (h warningsHook) Levels() []logrus.Level { return logrus.AllLevels[:logrus.WarnLevel+1] }
func (h warningsHook) Fire(e *logrus.Entry) error {
	b, err := h.fmt.Format(e)
	if err != nil {
		return fmt.Errorf("format log line: %w", err)
	}
	if _, err := h.w.Write(b); err != nil {
		return fmt.Errorf("write log line: %w", err)
	}
	return nil
}

// LogFlushInterval is how long log lines wait in memory at most
// (jsonlog.Writer): a kill -9 loses at most this much.
const LogFlushInterval = 100 * time.Millisecond

// stderrLog says which log lines a node writes to stderr.
type stderrLog int

const (
	stderrFull     stderrLog = iota // the full log without -log, warnings and errors with it
	stderrWarnings                  // warnings and errors only (stderr is a pipe or a file)
	stderrNone                      // nothing: a terminal's screen shows one human line per event
)

// interactiveStderr keeps an interactive node's log lines off a terminal's
// chat screen unless -log-level debug asks for them.
func interactiveStderr(cfg config.Node, stderrIsTerminal bool) stderrLog {
	switch {
	case cfg.LogLevel == "debug":
		return stderrFull
	case stderrIsTerminal:
		return stderrNone
	}
	return stderrWarnings
}

// newLogger builds the node's logger: JSON lines with node, run and ts_ns,
// batched per LogFlushInterval (the close function writes the rest), to
// -log FILE or, as mode says, to stderr.
func newLogger(cfg config.Node, stderr io.Writer, mode stderrLog) (*logrus.Entry, func(), error) {
	l := logrus.New()
	var f logrus.Formatter = &jsonlog.Formatter{TimeNSKey: nodelog.FieldTSNS}
	if cfg.LogFormat == "text" {
		f = &logrus.TextFormatter{DisableColors: true, FullTimestamp: true}
		l.AddHook(tsHook{})
	}
	l.SetFormatter(f)
	lvl, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, nil, fmt.Errorf("log level: %w", err)
	}
	l.SetLevel(lvl)
	if mode == stderrWarnings || (mode == stderrFull && cfg.Log != "") {
		l.AddHook(warningsHook{w: stderr, fmt: f}) // unless the full log goes to stderr
	}
	out, closeOut := io.Writer(io.Discard), func() error { return nil }
	switch {
	case cfg.Log != "":
		fh, err := os.OpenFile(cfg.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("open log %s: %w", cfg.Log, err)
		}
		bw := jsonlog.NewWriter(fh, LogFlushInterval)
		out, closeOut = bw, func() error { return errors.Join(bw.Close(), fh.Close()) }
	case mode == stderrFull:
		bw := jsonlog.NewWriter(stderr, LogFlushInterval)
		out, closeOut = bw, bw.Close
	}
	l.SetOutput(out)
	entry := l.WithFields(logrus.Fields{nodelog.FieldNode: cfg.Nick, nodelog.FieldRun: cfg.Run})
	pahoSink.Store(entry)
	return entry, func() {
		pahoSink.CompareAndSwap(entry, nil)
		if err := closeOut(); err != nil {
			fmt.Fprintf(stderr, "chatnode: close log %s: %v\n", cfg.Log, err)
		}
	}, nil
}

// pahoSink is the node's logger once newLogger has made it: paho's
// loggers are package globals set once in main (PahoLoggers), before it.
var pahoSink atomic.Pointer[logrus.Entry]

// pahoWriter logs each line paho writes at its level into pahoSink.
type pahoWriter struct{ level logrus.Level }

func (w pahoWriter) Write(p []byte) (int, error) {
	if e := pahoSink.Load(); e != nil {
		e.WithField(nodelog.FieldEvent, nodelog.EventClientLog).Log(w.level, strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// PahoLoggers returns loggers for paho's ERROR and CRITICAL output into
// the node's JSON log (event client_log), off the terminal's chat. Its
// errors, mostly failed reconnects the node reports itself, are logged at
// debug level, critical ones at error level.
func PahoLoggers() (errorLog, criticalLog *log.Logger) {
	return log.New(pahoWriter{logrus.DebugLevel}, "", 0), log.New(pahoWriter{logrus.ErrorLevel}, "", 0)
}
