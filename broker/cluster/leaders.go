package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// The broker leading a partition's stream (Raft elects it) sequences its
// conversations: its appends reach the leader in process, and no two
// brokers race for a conversation's next number. This file follows and
// spreads the leaderships: partition i's home broker is member i modulo
// their number of the stream's members sorted by name, and an up-to-date
// home broker that does not lead asks the leader to step down in its
// favour. So each broker leads one partition when there are as many as
// brokers, and takes its partition back after a restart.

// leaderWatchInterval is how often a broker reads its partitions' leaders
// and asks for its home partitions (advisories tell elections at once).
const leaderWatchInterval = time.Second

// reclaimPause separates two requests of a home broker for its partition.
const reclaimPause = 5 * time.Second

// leaderWatch follows the partitions' leaders.
type leaderWatch struct {
	leaving atomic.Bool // Handover began: lead nothing more
	once    sync.Once   // guards stop
	cancel  context.CancelFunc
	done    chan struct{}
	sub     *nats.Subscription
}

// globalAccount is the NATS account the broker's streams live in.
const globalAccount = server.DEFAULT_GLOBAL_ACCOUNT

// ownerOf is the broker that sequences part's conversations: this broker
// while it leads part's stream, else the leader last learned; this broker
// too when none is known (the expected last record fences it).
func (s *LogStore) ownerOf(part *partition) string {
	if s.ns.JetStreamIsStreamLeader(globalAccount, part.name) {
		return s.node
	}
	if l, _ := part.leader.Load().(string); l != "" {
		return l
	}
	return s.node
}

// Leading names the partition streams this broker leads now: with as
// many partitions as brokers, one each once the leaderships have spread.
func (s *LogStore) Leading() []string {
	led := []string{}
	for _, p := range s.parts {
		if s.ns.JetStreamIsStreamLeader(globalAccount, p.name) {
			led = append(led, p.name)
		}
	}
	return led
}

// watchLeaders starts following the partitions' leaders.
func (s *LogStore) watchLeaders() {
	ctx, cancel := context.WithCancel(context.Background())
	s.leaders.cancel, s.leaders.done = cancel, make(chan struct{})
	sub, err := s.nc.Subscribe(server.JSAdvisoryStreamLeaderElectedPre+"."+StreamPrefix+"-*", func(m *nats.Msg) {
		var adv server.JSStreamLeaderElectedAdvisory
		if json.Unmarshal(m.Data, &adv) != nil {
			return
		}
		for _, p := range s.parts {
			if p.name == adv.Stream {
				p.leader.Store(adv.Leader)
			}
		}
	})
	if err == nil {
		s.leaders.sub = sub
	}
	go func() {
		defer close(s.leaders.done)
		asked := map[int]time.Time{}
		tick := time.NewTicker(leaderWatchInterval)
		defer tick.Stop()
		for {
			for _, p := range s.parts {
				s.checkLeader(ctx, p, asked)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// checkLeader reads p's leader and, when this broker is p's home, up to
// date and not leaving, asks for the leadership.
func (s *LogStore) checkLeader(ctx context.Context, p *partition, asked map[int]time.Time) {
	ictx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	info, err := p.stream.Info(ictx)
	if err != nil || info.Cluster == nil {
		return
	}
	p.leader.Store(info.Cluster.Leader)
	members := []string{info.Cluster.Leader}
	current := false
	for _, r := range info.Cluster.Replicas {
		members = append(members, r.Name)
		if r.Name == s.node {
			current = r.Current
		}
	}
	slices.Sort(members)
	home := members[p.index%len(members)]
	if home != s.node || info.Cluster.Leader == s.node || info.Cluster.Leader == "" || !current ||
		s.leaders.leaving.Load() || time.Since(asked[p.index]) < reclaimPause {
		return
	}
	asked[p.index] = time.Now()
	err = s.stepDown(ictx, p, s.node)
	s.log.WithError(err).WithFields(logrus.Fields{"event": logevent.ClusterLeader, "stream": p.name, "from": info.Cluster.Leader}).
		Info("room log: asking for the leadership of this broker's home partition")
}

// stepDown asks part's stream leader to hand its leadership to preferred
// ("": the member JetStream finds best).
func (s *LogStore) stepDown(ctx context.Context, part *partition, preferred string) error {
	var req server.JSApiLeaderStepdownRequest
	if preferred != "" {
		req.Placement = &server.Placement{Preferred: preferred}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	resp, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+part.name, body)
	if err != nil {
		return err
	}
	var answer server.JSApiStreamLeaderStepDownResponse
	if err := json.Unmarshal(resp.Data, &answer); err != nil {
		return err
	}
	if answer.Error != nil {
		return answer.Error
	}
	return nil
}

// handoverWait bounds Handover: the last broker of a cluster to stop gets
// no answer and must not hold its shutdown for long.
const handoverWait = time.Second

// Handover hands this broker's leaderships (its partitions' streams and
// JetStream's metadata) to the others before it stops: a planned step-down
// takes milliseconds, a dead leader's election seconds. It returns once
// this broker leads nothing, or after handoverWait.
func (s *LogStore) Handover(ctx context.Context) {
	if !s.ns.Running() || s.leaders.leaving.Swap(true) || s.ns.NumRoutes() == 0 {
		return // killed, handed over already, or no broker left to take over
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, handoverWait)
	defer cancel()
	asked := map[string]time.Time{} // partition → when its step-down was asked
	s.stepDownLed(ctx, asked)
	if s.ns.JetStreamIsLeader() {
		// The answer may come late from the new metadata leader; the
		// step-down itself is immediate.
		mctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := s.nc.RequestWithContext(mctx, "$JS.API.META.LEADER.STEPDOWN", nil)
		cancel()
		if err != nil {
			s.log.WithError(err).WithField("event", logevent.ClusterLeader).Warn("room log: JetStream's metadata leadership not handed over")
		}
	}
	// A home partition this broker asked for just before leaving can
	// still arrive: it is handed on too.
	for ctx.Err() == nil && s.leadsAny() {
		s.stepDownLed(ctx, asked)
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.log.WithFields(logrus.Fields{"event": logevent.ClusterLeader, "streams": len(asked), "still_leading": s.leadsAny(),
		"duration_ms": time.Since(began).Milliseconds()}).Info("room log: leaderships handed over")
}

// handoverRetry is how long Handover waits for a step-down it asked for
// before it asks again.
const handoverRetry = 250 * time.Millisecond

// stepDownLed asks each partition this broker leads, and has not asked
// within handoverRetry (asked, updated), to elect another leader.
func (s *LogStore) stepDownLed(ctx context.Context, asked map[string]time.Time) {
	for _, p := range s.parts {
		if !s.ns.JetStreamIsStreamLeader(globalAccount, p.name) || time.Since(asked[p.name]) < handoverRetry {
			continue
		}
		asked[p.name] = time.Now()
		if err := s.stepDown(ctx, p, ""); err != nil {
			s.log.WithError(err).WithFields(logrus.Fields{"event": logevent.ClusterLeader, "stream": p.name}).Warn("room log: leadership not handed over")
		}
	}
}

// leadsAny reports whether this broker leads a partition's stream.
func (s *LogStore) leadsAny() bool {
	return slices.ContainsFunc(s.parts, func(p *partition) bool { return s.ns.JetStreamIsStreamLeader(globalAccount, p.name) })
}

// stop ends the leader watch.
func (w *leaderWatch) stop() {
	w.once.Do(func() {
		if w.cancel == nil {
			return
		}
		w.cancel()
		if w.sub != nil {
			_ = w.sub.Unsubscribe()
		}
		<-w.done
	})
}
