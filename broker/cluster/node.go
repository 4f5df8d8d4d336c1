// Package cluster makes a broker one node of a highly available chat
// service. Each broker embeds a NATS server with JetStream; the brokers
// join over NATS routes, and the room log becomes a JetStream stream
// replicated with Raft (LogStore), so any broker serves the same log and a
// message is acknowledged only once a majority of brokers hold it. Nothing
// here runs unless the broker's cluster section names a node.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/config"
)

// Node is a running embedded NATS server with JetStream, and this broker's
// in-process connection to it.
type Node struct {
	name string
	ns   *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	log  *logrus.Entry
}

// ReadyTimeout bounds Start's wait for the routes and a JetStream meta
// leader (a majority of the brokers); the broker then exits with an error
// and its supervisor starts it again.
const ReadyTimeout = 2 * time.Minute

// Start runs the embedded NATS server described by c, with JetStream's
// store in dataDir/jetstream, and returns once JetStream answers or ctx
// ends. NATS's message limit is raised to fit maxRecord, the largest room
// log record (limits.max_packet_size).
func Start(ctx context.Context, c config.Cluster, dataDir string, maxRecord int, log *logrus.Entry) (*Node, error) {
	opts, err := serverOptions(c, dataDir)
	if err != nil {
		return nil, err
	}
	// A record and its headers: NATS refuses a larger message. At most
	// NATS's default pending bound per connection (64 MiB), which it must
	// not exceed.
	opts.MaxPayload = int32(min(max(maxRecord+64<<10, 1<<20), 64<<20))
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster node %s: %w", c.Node, err)
	}
	ns.SetLoggerV2(natsLogger{log.WithField("component", "nats")}, false, false, false)
	ns.Start()
	n := &Node{name: c.Node, ns: ns, log: log}
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("cluster node %s: NATS server not ready (route listener %s)", c.Node, c.Listen)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("distchat-broker-"+c.Node), nats.MaxReconnects(-1))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("cluster node %s: connect in process: %w", c.Node, err)
	}
	n.nc = nc
	if n.js, err = jetstream.New(nc); err != nil {
		n.Kill()
		return nil, fmt.Errorf("cluster node %s: jetstream: %w", c.Node, err)
	}
	if err := n.waitReady(ctx); err != nil {
		n.Kill()
		return nil, err
	}
	log.WithFields(logrus.Fields{"event": logevent.ClusterReady, "node": c.Node, "listen": n.RouteAddr(), "routes": c.Routes,
		"replicas": c.Replicas}).Info("cluster node ready: JetStream answers")
	return n, nil
}

// serverOptions are the embedded server's settings: a loopback-only client
// listener (the broker connects in process), JetStream, and the cluster routes.
func serverOptions(c config.Cluster, dataDir string) (*server.Options, error) {
	host, portStr, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster.listen %q: %w", c.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("cluster.listen %q: %w", c.Listen, err)
	}
	opts := &server.Options{
		ServerName: c.Node,
		// The broker connects in process. NATS starts its routes only after
		// its client listener, so that listener exists, on a random
		// loopback port, unannounced.
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  filepath.Join(dataDir, "jetstream"),
		Cluster:   server.ClusterOpts{Name: c.Name, Host: host, Port: port},
	}
	if len(c.Routes) > 0 {
		opts.Routes = server.RoutesFromStr(strings.Join(c.Routes, ","))
	}
	return opts, nil
}

// waitReady polls JetStream until it answers an account request, which it
// does once the cluster has a meta leader.
func (n *Node) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		_, err := n.js.AccountInfo(actx)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster node %s: JetStream not ready within %s (are a majority of the brokers up and routed?): %w", n.name, ReadyTimeout, err)
		case <-tick.C:
		}
	}
}

// Name is the node's name in the cluster.
func (n *Node) Name() string { return n.name }

// Routes is the number of route connections to other brokers up now.
func (n *Node) Routes() int { return n.ns.NumRoutes() }

// RouteMessages counts the messages this broker's routes carried, in from
// and out to the other brokers, since it started: divided by the records
// appended meanwhile, what one record costs between brokers.
func (n *Node) RouteMessages() (in, out int64) {
	rz, err := n.ns.Routez(nil)
	if err != nil {
		return 0, 0
	}
	for _, r := range rz.Routes {
		in, out = in+r.InMsgs, out+r.OutMsgs
	}
	return in, out
}

// RouteAddr is the route listener's real address (useful with port 0).
func (n *Node) RouteAddr() string {
	if a := n.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Close shuts the server down, letting JetStream write its state.
func (n *Node) Close() error {
	n.Kill()
	n.ns.WaitForShutdown()
	if n.log != nil {
		n.log.WithFields(logrus.Fields{"event": logevent.ClusterStopped, "node": n.name}).Info("cluster node stopped")
	}
	return nil
}

// Kill stops the server at once, as a crash would to the other brokers.
func (n *Node) Kill() {
	if n.nc != nil {
		n.nc.Close()
	}
	n.ns.Shutdown()
}

// errClosed is returned by operations on a closed node's log.
var errClosed = errors.New("cluster: log closed")

// errStopping is returned by appends after LogStore.StopAppends.
var errStopping = errors.New("room log: broker stopping, append abandoned (the publisher sends it again)")

// natsLogger routes the embedded NATS server's log through the broker's
// logrus logger (JSON lines, component nats), so an operator reads one log.
type natsLogger struct{ log *logrus.Entry }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }

// Errorf logs at WARN what a starting or failing-over cluster expects
// (a peer's route not up yet, a peer gone), at ERROR the rest.
func (l natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "connect to route") || strings.Contains(msg, "route connection") {
		l.log.Warn(msg)
		return
	}
	l.log.Error(msg)
}
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Trace(fmt.Sprintf(format, v...)) }
