package chatnode

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/analysis/percentile"
	"github.com/distchat/distchat/chatnode/jsonlog"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session"
	"github.com/distchat/distchat/config"
)

var benchUsageHead = `chatnode bench: headless load from one chat node.

Publishes -count messages (or for -duration) of -size bytes at -rate messages/s, round-robin over
its rooms, open loop: each message carries its SCHEDULED send time, so a slow broker shows up as
latency instead of a slower sender (no coordinated omission). Receives everything in its rooms and
exits when it has received -expect messages (or -peers × what each sends: -count, or -rate × -duration)
or -linger passed after sending. Messages still without a PUBACK when -linger ends are reported as
unacked=N on the summary line (and logged send_failed) instead of being waited for. It never shows history (-history is 0 here).
Prints one summary line.
` + benchExitCodes + `
Flags:
`

var benchExitCodes = fmt.Sprintf(exitCodesHelp, ", fewer messages received than expected or peers not online", " within -start-timeout")

// benchParams are the load shape of one bench run.
type benchParams struct {
	count        int
	duration     time.Duration
	size         int
	rate         float64
	expect       int
	peers        int
	linger       time.Duration
	startTimeout time.Duration
}

// benchResult is what one run measured.
type benchResult struct {
	Sent, Received, Duplicates, Expected int
	Unacked                              int // still without a PUBACK when -linger ended (logged send_failed at close)
	P50, P99, Max                        time.Duration
}

func (r benchResult) String() string {
	s := fmt.Sprintf("sent=%d received=%d expected=%d duplicates=%d p50=%s p99=%s max=%s",
		r.Sent, r.Received, r.Expected, r.Duplicates, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.Max))
	if r.Unacked > 0 {
		s += fmt.Sprintf(" unacked=%d", r.Unacked)
	}
	return s
}

// perNode is how many messages sendLoad sends: -count, or one every 1/rate
// within -duration (0: unknown, for a closed loop over a duration).
func (bp benchParams) perNode() int {
	if bp.count > 0 {
		return bp.count
	}
	interval := bp.interval()
	if interval == 0 || bp.duration <= 0 {
		return 0
	}
	return int((bp.duration + interval - 1) / interval)
}

// interval is the time between two sends; 0 for a closed loop.
func (bp benchParams) interval() time.Duration {
	if bp.rate <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / bp.rate)
}

// validate checks the load shape, one line per problem: a negative or
// non-finite value would otherwise run a load nobody asked for (a negative
// -rate runs closed loop, a negative -count runs forever).
func (bp benchParams) validate(maxPayload int) error {
	return errors.Join(
		problem(bp.count < 0, fmt.Sprintf("-count: %d cannot be negative", bp.count)),
		problem(bp.count > 0 && bp.duration > 0, "-count and -duration: give one, not both"),
		problem(bp.duration < 0, fmt.Sprintf("-duration: %s cannot be negative", bp.duration)),
		problem(bp.size < 0, fmt.Sprintf("-size: %d cannot be negative", bp.size)),
		problem(bp.size >= 0 && bp.size > maxPayload, fmt.Sprintf("-size: %d is over -max-payload %d; every message would be refused", bp.size, maxPayload)),
		problem(math.IsNaN(bp.rate) || math.IsInf(bp.rate, 0) || bp.rate < 0, fmt.Sprintf("-rate: %g must be a number ≥ 0 (0: as fast as the window allows)", bp.rate)),
		problem(bp.expect < 0, fmt.Sprintf("-expect: %d cannot be negative", bp.expect)),
		problem(bp.peers < 1, fmt.Sprintf("-peers: %d must be at least 1 (this node)", bp.peers)),
		problem(bp.linger < 0, fmt.Sprintf("-linger: %s cannot be negative", bp.linger)),
		problem(bp.startTimeout <= 0, fmt.Sprintf("-start-timeout: %s must be positive", bp.startTimeout)),
	)
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000) }

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg config.Node
	var bp benchParams
	stderr = &lockedWriter{w: stderr} // the log's flusher and the node's own lines
	fs := flag.NewFlagSet("chatnode bench", flag.ContinueOnError)
	fs.IntVar(&bp.count, "count", 0, "messages to send (default 1000 unless -duration is given)")
	fs.DurationVar(&bp.duration, "duration", 0, "send for this `long` instead of -count")
	fs.IntVar(&bp.size, "size", 200, "encoded message size in `bytes` (padded)")
	fs.Float64Var(&bp.rate, "rate", 1000, "messages per second (0: as fast as the window allows)")
	fs.IntVar(&bp.expect, "expect", 0, "messages to receive before exiting (0: -peers × -count)")
	fs.IntVar(&bp.peers, "peers", 1, "bench nodes sending into the same rooms, this one included; waits until they are online")
	fs.DurationVar(&bp.linger, "linger", 10*time.Second, "after sending, wait at most this `long` for the expected messages")
	fs.DurationVar(&bp.startTimeout, "start-timeout", 30*time.Second, "wait at most this `long` for the connection and the peers")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to `file` (go tool pprof)")
	if err := loadNode(fs, args, &cfg, stderr, benchUsageHead, config.DefaultNode()); err != nil {
		return configError(err, stderr)
	}
	if len(cfg.Rooms) == 0 {
		cfg.Rooms = []string{"bench"}
	}
	if err := bp.validate(cfg.MaxPayload); err != nil {
		return configError(err, stderr)
	}
	if bp.count == 0 && bp.duration == 0 {
		bp.count = 1000
	}
	cfg.History = 0 // a load node shows nothing; history would only blur what it received
	log, closeLog, err := newLogger(cfg, stderr, stderrFull)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeLog()
	stopProfile, err := startCPUProfile(*cpuprofile, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	defer stopProfile()
	res, err := bench(ctx, cfg, bp, log, func(e session.ConnectFailed) {
		if !e.Final { // a refusal comes back as bench's error
			fmt.Fprintf(stderr, "chatnode bench: %v; still trying\n", e.Err)
		}
	})
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "bench run=%s node=%s %s\n", cfg.Run, cfg.Nick, res)
		if res.Expected > 0 && res.Received < res.Expected {
			return exitIncomplete
		}
		return exitOK
	case res.Sent > 0:
		fmt.Fprintf(stdout, "bench run=%s node=%s %s (stopped early)\n", cfg.Run, cfg.Nick, res)
	}
	fmt.Fprintf(stderr, "chatnode bench: %v\n", err)
	if errors.Is(err, session.ErrRefused) || errors.Is(err, errNotConnected) {
		return exitNoBroker
	}
	return exitIncomplete
}

// lockedWriter serialises writes to one writer shared by the logger's
// flusher and the node's own stderr lines.
type lockedWriter struct {
	mu sync.Mutex // guards w; held across its Write
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// latencies collects end-to-end latencies of delivered messages.
type latencies struct {
	mu  sync.Mutex // guards v; a leaf lock, held for no I/O
	v   []time.Duration
	got chan struct{} // signalled on every delivery
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.v = append(l.v, d)
	l.mu.Unlock()
	select {
	case l.got <- struct{}{}:
	default:
	}
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.v)
}

// bench runs one load node until done and returns its measurements;
// onFail (may be nil) hears of connection failures as they happen.
func bench(ctx context.Context, cfg config.Node, bp benchParams, log *logrus.Entry, onFail func(session.ConnectFailed)) (benchResult, error) {
	lat := &latencies{got: make(chan struct{}, 1)}
	opts := session.Options{}
	if bw, ok := log.Logger.Out.(*jsonlog.Writer); ok && cfg.Log != "" && cfg.LogFormat == "json" {
		// The "received" lines are what a run counts: positions are saved
		// with them, so a node killed and restarted logs each message once.
		opts.Record, opts.FlushLog = session.RecordLog, bw.Flush
	}
	opts.OnEvent = func(e session.Event) {
		switch e := e.(type) {
		case session.Message:
			if e.Via != nodelog.ViaHistory {
				lat.add(time.Duration(e.RecvNS - e.Env.SentNS))
			}
		case session.ConnectFailed:
			if onFail != nil {
				onFail(e)
			}
		}
	}
	s, err := session.New(cfg, log, opts)
	if err != nil {
		return benchResult{}, err
	}
	s.Start(ctx)
	defer closeSession(s, cfg.ConnectTimeout)
	sctx, cancel := context.WithTimeout(ctx, bp.startTimeout)
	defer cancel()
	if err := s.WaitConnected(sctx); err != nil {
		if errors.Is(err, session.ErrRefused) || ctx.Err() != nil {
			return benchResult{}, err
		}
		if why := s.Err(); why != nil {
			err = why
		}
		return benchResult{}, fmt.Errorf("%w within -start-timeout %s: %w", errNotConnected, bp.startTimeout, err)
	}
	if err := waitPeers(sctx, s, cfg.Rooms, bp.peers); err != nil {
		return benchResult{}, err
	}
	res := benchResult{Expected: cmp.Or(bp.expect, bp.peers*bp.perNode())}
	log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventBenchStart, "rooms": cfg.Rooms, nodelog.FieldCount: bp.count,
		"rate": bp.rate, "size": bp.size, "duration": bp.duration.String()}).Info("bench start")
	sent, err := sendLoad(ctx, s, cfg.Rooms, bp)
	res.Sent = len(sent)
	if err != nil {
		return res, err
	}
	lingerEnd := time.Now().Add(bp.linger)
	res.Unacked = waitAcked(ctx, sent, lingerEnd)
	waitReceived(ctx, s, lat, res.Expected, time.Until(lingerEnd))
	if err := s.Err(); errors.Is(err, session.ErrRefused) {
		res.Received = lat.count()
		return res, err
	}
	lat.summarise(&res)
	res.Duplicates = int(s.Stats().Duplicates)
	log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventBenchEnd, "sent": res.Sent, "received": res.Received,
		"expected": res.Expected, "duplicates": res.Duplicates, "unacked": res.Unacked, "p50_us": res.P50.Microseconds(),
		"p99_us": res.P99.Microseconds()}).Info("bench end")
	return res, nil
}

// waitAcked waits until every sent message is acknowledged (or has
// failed), until end or until ctx ends, and returns how many are still
// waiting. Bounded, because a publish in flight when a broker dies can wait
// for its PUBACK much longer than a load run lasts (session.AckTimeout).
func waitAcked(ctx context.Context, sent []*session.Sent, end time.Time) int {
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	n := 0
	for _, m := range sent {
		select {
		case <-m.Done:
		case <-ctx.Done():
			select { // both may be ready: count only what is still waiting
			case <-m.Done:
			default:
				n++
			}
		}
	}
	return n
}

// waitReceived waits until expected messages are delivered (0: until
// linger passes), at most linger, or until ctx ends or the broker refuses
// the node on a reconnect (nothing more arrives then).
func waitReceived(ctx context.Context, s *session.Session, lat *latencies, expected int, linger time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, linger)
	defer cancel()
	for expected == 0 || lat.count() < expected {
		select {
		case <-lat.got:
		case <-ctx.Done():
			return
		case <-s.Refused():
			return
		}
	}
}

// summarise fills in res's received count and latency percentiles.
func (l *latencies) summarise(res *benchResult) {
	l.mu.Lock()
	v := slices.Clone(l.v)
	l.mu.Unlock()
	slices.Sort(v)
	res.Received = len(v)
	res.P50, res.P99, res.Max = percentile.Of(v, 500), percentile.Of(v, 990), percentile.Of(v, 1000)
}

// waitPeers waits until peers users (this one included) are online in every
// room, from their retained presence, so no one sends before all listen.
func waitPeers(ctx context.Context, s *session.Session, rooms []string, peers int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if !slices.ContainsFunc(rooms, func(r string) bool { return len(s.Who(r)) < peers }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d peers online in %v: %w", peers, rooms, ctx.Err())
		case <-t.C:
		}
	}
}

// sendLoad publishes on an open-loop schedule: message i is due at
// start + i/rate and carries that time as its send time, whether or not the
// window let it out on time.
func sendLoad(ctx context.Context, s *session.Session, rooms []string, bp benchParams) ([]*session.Sent, error) {
	var out []*session.Sent
	start, interval := time.Now(), bp.interval()
	timer := time.NewTimer(time.Hour) // only Reset below: no stale tick since Go 1.23
	defer timer.Stop()
	for i := 0; bp.count <= 0 || i < bp.count; i++ {
		due := start.Add(time.Duration(i) * interval)
		if bp.count <= 0 && due.Sub(start) >= bp.duration {
			break
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return out, nil
			}
		}
		sentNS := due.UnixNano()
		if interval == 0 {
			sentNS = 0 // closed loop: the send time is when it goes out
		}
		m, err := s.Send(ctx, session.Outgoing{Room: rooms[i%len(rooms)], Body: fmt.Sprintf("load %d", i), Size: bp.size, SentNS: sentNS})
		if err != nil {
			if ctx.Err() != nil {
				return out, nil
			}
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// startCPUProfile writes a CPU profile of the process to path until the
// returned stop function runs; an empty path profiles nothing.
func startCPUProfile(path string, stderr io.Writer) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "chatnode: cpu profile %s: %v\n", path, err)
		}
	}, nil
}
