package chatnode

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/web"
	"github.com/distchat/distchat/config"
)

var webUsageHead = `chatnode web: serve distchat as a web page; every signed-in browser tab is a device session.

  chatnode web -users config/examples/users.yaml -state ./web-state [-http 127.0.0.1:8081] [flags]

People sign in with a user of the -users file (bcrypt, as the broker checks it); the node then
connects to the broker as that user, with that password, kept in memory for the sign-in's life.
Beyond loopback, serve TLS (-tls-cert, -tls-key). docs/web.md describes the design.
` + "\nFlags:\n"

// webFlags are the flags of `chatnode web` beyond the node's.
type webFlags struct {
	http, tlsCert, tlsKey, users string
	insecure                     bool
	origins                      []string
	limits                       web.Limits
}

func bindWeb(fs *flag.FlagSet, w *webFlags) {
	w.http = "127.0.0.1:8081"
	w.limits = web.DefaultLimits()
	fs.StringVar(&w.http, "http", w.http, "serve the page on `host:port`")
	fs.StringVar(&w.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `file` (PEM; with -tls-key)")
	fs.StringVar(&w.tlsKey, "tls-key", "", "the TLS private key `file` (PEM)")
	fs.StringVar(&w.users, "users", "", "users `file` (YAML, the broker's): sign-in checks it")
	fs.BoolVar(&w.insecure, "insecure-http", false, "allow plain HTTP on a non-loopback address (a container whose port is published on loopback, or behind a TLS proxy)")
	config.ListVar(fs, &w.origins, "allow-origin", "extra page `origin` allowed (scheme://host:port; repeatable), e.g. behind a proxy")
	fs.IntVar(&w.limits.MaxTabs, "max-tabs", w.limits.MaxTabs, "open browser tabs at most (`n`; each is an MQTT connection)")
	fs.IntVar(&w.limits.MaxTabsPerUser, "max-tabs-per-user", w.limits.MaxTabsPerUser, "open tabs of one user at most (`n`)")
	fs.IntVar(&w.limits.MaxBody, "max-body", w.limits.MaxBody, "longest message text in `bytes`")
	fs.Float64Var(&w.limits.SendRate, "send-rate", w.limits.SendRate, "messages per second one tab may send (`rate`, bursts of -send-burst)")
	fs.IntVar(&w.limits.SendBurst, "send-burst", w.limits.SendBurst, "messages one tab may send at once (`n`)")
	fs.Float64Var(&w.limits.SignInPerMinute, "signin-rate", w.limits.SignInPerMinute, "sign-in attempts per minute from one address (`rate`)")
	fs.DurationVar(&w.limits.SessionTTL, "signin-ttl", w.limits.SessionTTL, "how long a sign-in lasts (`duration`); the password is held in memory that long")
}

// check reports what is wrong with the web flags.
func (w *webFlags) check(cfg config.Node) error {
	l := w.limits
	return errors.Join(
		problem(w.users == "", "-users FILE is required: sign-in checks it"),
		problem(cfg.StateDir == "", "-state DIR is required: each tab keeps its device state under it"),
		problem((w.tlsCert == "") != (w.tlsKey == ""), "-tls-cert and -tls-key go together"),
		problem(w.tlsCert == "" && !w.insecure && !isLoopback(w.http), fmt.Sprintf("-http %s is beyond loopback: serve TLS (-tls-cert, -tls-key), or say -insecure-http if a proxy or a loopback-only port publication protects it", w.http)),
		problem(l.MaxTabs < 1 || l.MaxTabsPerUser < 1 || l.MaxBody < 1 || l.SendRate <= 0 || l.SendBurst < 1 || l.SignInPerMinute <= 0 || l.SessionTTL <= 0,
			"-max-tabs, -max-tabs-per-user, -max-body, -send-rate, -send-burst, -signin-rate and -signin-ttl must be positive"),
		problem(l.MaxBody > cfg.MaxPayload/2, fmt.Sprintf("-max-body %d must be at most half of -max-payload %d (the envelope around it)", l.MaxBody, cfg.MaxPayload)),
	)
}

// isLoopback reports whether a listen address stays on this machine.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	return host == "localhost" || net.ParseIP(host).IsLoopback() // a nil IP is no loopback
}

// runWeb is `chatnode web`: it serves the page until ctx ends.
func runWeb(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg config.Node
	var wf webFlags
	fs := flag.NewFlagSet("chatnode web", flag.ContinueOnError)
	bindWeb(fs, &wf)
	defaults := config.DefaultNode()
	defaults.Nick = "web"
	if err := loadNode(fs, args, &cfg, stderr, webUsageHead, defaults); err != nil {
		return configError(err, stderr)
	}
	if err := wf.check(cfg); err != nil {
		return configError(err, stderr)
	}
	users, err := config.LoadUsers(wf.users)
	if err != nil {
		return configError(err, stderr)
	}
	log, closeLog, err := newLogger(cfg, stderr, stderrFull)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeLog()
	srv, err := web.New(web.Config{Node: cfg, Users: users, TLS: wf.tlsCert != "",
		AllowOrigins: wf.origins, Limits: wf.limits}, log)
	if err != nil {
		return fail(stderr, err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", wf.http)
	if err != nil {
		return fail(stderr, fmt.Errorf("listen %s: %w", wf.http, err))
	}
	// HTTP/1.1 only: the tabs' WebSockets upgrade an HTTP/1.1 connection
	// (gorilla/websocket has no WebSocket over HTTP/2), and the page is
	// small enough not to need HTTP/2.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}, Protocols: &protocols}
	scheme, serve := "http", func() error { return hs.Serve(ln) }
	if wf.tlsCert != "" {
		scheme, serve = "https", func() error { return hs.ServeTLS(ln, wf.tlsCert, wf.tlsKey) }
	}
	log.WithField(nodelog.FieldEvent, web.EventStarted).WithField("addr", ln.Addr().String()).WithField(nodelog.FieldBroker, cfg.Broker).Info("serving the web page")
	fmt.Fprintf(stdout, "chatnode web: open %s://%s and sign in with a user of %s\n", scheme, ln.Addr(), wf.users)
	served := make(chan error, 1)
	go func() { served <- serve() }()
	select {
	case err := <-served:
		return fail(stderr, fmt.Errorf("serve %s: %w", wf.http, err))
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.WithField(nodelog.FieldEvent, nodelog.EventShutdown).WithField(nodelog.FieldError, err.Error()).Warn("stop the web server")
	}
	return exitOK
}
