package broker

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/config"
)

const usage = `usage: broker [flags]            run a broker node
       broker hash-password      read a password on stdin, print its bcrypt hash for a users file

With no configuration the broker is a local development broker: MQTT on
127.0.0.1:1883 (loopback only), HTTP /healthz and /stats on 127.0.0.1:8080,
anonymous clients allowed, identities not enforced, nothing persisted. Give
users (-users FILE or auth.users in -config) to turn authentication and
per-room ACLs on, and -data DIR to keep sessions and the room log.
-durability machine fsyncs every chat message before its PUBACK.

The broker runs on every processor Go sees, unless -procs N or the GOMAXPROCS
environment variable pins it (-procs wins when both are set).

Configuration: the YAML file (-config), then DISTCHAT_* environment variables
(DISTCHAT_TCP, DISTCHAT_DURABILITY, DISTCHAT_ROOM_LOG_MAX_AGE, ...), then flags; later ones win.

Flags:
`

// Main runs the broker command with args (without the program name) until
// ctx is cancelled and returns the exit code: 0 after a clean shutdown or
// -h, 1 on a runtime failure, 2 on bad usage or configuration.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "hash-password" {
		return hashPassword(stdin, stdout, stderr)
	}
	cfg := config.DefaultBroker()
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	// Main prints the whole usage for -h, one line for a bad flag (which a
	// page of usage would scroll away), instead of the flag package.
	fs.SetOutput(io.Discard)
	badFlag := false
	fs.Usage = func() { badFlag = true }
	fs.StringVar(&cfg.TCP, "tcp", cfg.TCP, "MQTT TCP listener `host:port` (0.0.0.0:1883 opens it to the network)")
	fs.StringVar(&cfg.WS, "ws", cfg.WS, "MQTT-over-WebSocket listener `host:port` (off when empty)")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "HTTP listener `host:port` for /healthz and /stats (off when empty)")
	fs.BoolVar(&cfg.Pprof, "pprof", cfg.Pprof, "also serve Go's profiler on the HTTP listener under /debug/pprof/")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data `dir`ectory for sessions and the room log (memory only when empty)")
	fs.StringVar(&cfg.Auth.UsersFile, "users", cfg.Auth.UsersFile, "users `file` (YAML); turns authentication and ACLs on")
	fs.BoolVar(&cfg.Auth.Anonymous, "anonymous", cfg.Auth.Anonymous, "with users: let clients without credentials read rooms and presence")
	fs.BoolVar(&cfg.RoomLog.Enabled, "room-log", cfg.RoomLog.Enabled, "keep the durable, sequenced room log (zero loss end to end)")
	fs.Var(&cfg.Durability, "durability", "what an acknowledged chat message survives: `mode` process (kill -9 of the broker) or machine (also a power loss: fsync with group commit)")
	fs.IntVar(&cfg.Limits.MaxInflight, "max-inflight", cfg.Limits.MaxInflight, "unacknowledged QoS 1 messages per client before drops (counted)")
	fs.StringVar(&cfg.Cluster.Node, "cluster-node", cfg.Cluster.Node, "run as cluster node `name` (unique, stable): embeds NATS JetStream and replicates the room log; needs -data")
	fs.StringVar(&cfg.Cluster.Listen, "cluster-listen", cfg.Cluster.Listen, "NATS cluster route listener `host:port`")
	config.ListVar(fs, &cfg.Cluster.Routes, "cluster-routes", "the brokers' route `urls`, comma-separated nats://host:port (may include this one)")
	fs.DurationVar(&cfg.Cluster.BatchInterval, "cluster-batch-interval", cfg.Cluster.BatchInterval, "least time between two writes of one conversation from this broker; what arrives meanwhile goes in the next (0: no wait)")
	fs.IntVar(&cfg.Cluster.Partitions, "cluster-partitions", cfg.Cluster.Partitions, "streams the room log is spread over (`n`, 0: as many as replicas), each led by one broker; fixed once the log exists")
	fs.IntVar(&cfg.Cluster.Replicas, "cluster-replicas", cfg.Cluster.Replicas, "brokers holding each room log record (`n`: 1, 3 or 5); a majority acknowledges each append")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: json or text")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn, error")
	procs := fs.Int("procs", 0, "pin the broker to `n` processors (GOMAXPROCS); 0: Go's default, every processor or the GOMAXPROCS environment variable")
	if err := config.Load(fs, args, &cfg, cfg); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			fmt.Fprint(stderr, usage)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return 0
		case badFlag:
			fmt.Fprintf(stderr, "broker: %v (see broker -h)\n", err)
		default:
			printErr(stderr, err)
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "broker: unexpected argument %q (see broker -h)\n", fs.Arg(0))
		return 2
	}
	if *procs < 0 {
		fmt.Fprintf(stderr, "broker: -procs %d: want 0 (Go's default) or more (see broker -h)\n", *procs)
		return 2
	}
	log, err := NewLogger(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		printErr(stderr, err)
		return 2
	}
	log.SetOutput(stderr)
	setProcs(*procs)
	srv, err := New(cfg, log)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	if err := srv.Start(ctx); err != nil {
		printErr(stderr, err)
		if cerr := srv.Close(); cerr != nil {
			printErr(stderr, cerr)
		}
		return 1
	}
	<-ctx.Done()
	log.WithField("event", logevent.Shutdown).Info("signal received, shutting down")
	if err := srv.Close(); err != nil {
		printErr(stderr, err)
		return 1
	}
	return 0
}

// printErr writes each line of a (joined) error as its own line.
func printErr(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, "broker:", line)
	}
}

func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			// A terminal: prompt. The password is echoed; pipe it in to avoid that.
			fmt.Fprint(stderr, "password (echoed; end with Enter): ")
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "broker: read password:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "broker: hash-password: give the password on standard input, e.g. echo 'secret' | broker hash-password")
		return 2
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(stderr, "broker: hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(hash))
	return 0
}

// setProcs pins the broker to n processors (GOMAXPROCS, the -procs flag)
// when n > 0; 0 keeps Go's default. One processor suits a broker sharing a
// small machine with its clients: hand-offs between a publisher's and a
// subscriber's goroutines become run-queue operations, not thread wake-ups.
func setProcs(n int) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
