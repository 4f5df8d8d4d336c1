package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamPrefix names the room log's streams: one per partition,
// StreamPrefix + "-" + index.
const StreamPrefix = "ROOMLOG"

// partitionsKey is the stream metadata key recording the log's number of
// partitions, which must never change: conversations hash modulo it.
const partitionsKey = "distchat_partitions"

// partition is one stream of the room log, with a Raft leader of its own
// that sequences its conversations (sequencer.go).
type partition struct {
	index  int
	name   string // the stream's name
	stream jetstream.Stream

	// applied, advanced and start are guarded by LogStore.mu.
	applied  uint64        // the stream sequence the view has reached
	advanced chan struct{} // closed (and replaced) when applied grows
	start    uint64        // records above it arrived after Open: live

	consumeMu sync.Mutex // guards run; taken after no other lock
	run       *followRun // the consumer feeding the view (consumeFrom)
	// stalled is set while the stall bridge feeds the view (bridgeStall),
	// bridging while its goroutine runs.
	stalled, bridging atomic.Bool
	leader            atomic.Value // string: the stream's leader as last learned, "" unknown
}

// streamName is partition i's stream.
func streamName(i int) string { return StreamPrefix + "-" + strconv.Itoa(i) }

// partitionOf is conv's partition among n: FNV-1a of its name, which every
// broker and restart agrees on.
func partitionOf(conv string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(conv))
	return int(h.Sum32() % uint32(n))
}

// ensureStreams creates, joins or updates the log's n partition streams,
// refusing a log created with another number of partitions.
func ensureStreams(ctx context.Context, js jetstream.JetStream, n int, opts LogOptions) ([]*partition, error) {
	if err := checkPartitions(ctx, js, n); err != nil {
		return nil, err
	}
	parts := make([]*partition, n)
	for i := range n {
		st, err := ensureStream(ctx, js, i, n, opts)
		if err != nil {
			return nil, err
		}
		parts[i] = &partition{index: i, name: streamName(i), stream: st, advanced: make(chan struct{})}
		parts[i].leader.Store("")
	}
	return parts, nil
}

// checkPartitions refuses n when the log's first stream records another.
func checkPartitions(ctx context.Context, js jetstream.JetStream, n int) error {
	had := ""
	err := retry(ctx, "room log stream "+streamName(0), func(ctx context.Context) error {
		st, err := js.Stream(ctx, streamName(0))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		if err == nil {
			had = st.CachedInfo().Config.Metadata[partitionsKey]
		}
		return err
	})
	if err == nil && had != "" && had != strconv.Itoa(n) {
		return fmt.Errorf("cluster.partitions is %d but the room log was created with %s partitions: set cluster.partitions: %s on every broker", n, had, had)
	}
	return err
}

// ensureStream creates or updates partition i of n, retrying while the
// cluster cannot place it yet.
func ensureStream(ctx context.Context, js jetstream.JetStream, i, n int, opts LogOptions) (jetstream.Stream, error) {
	perSubject := int64(-1)
	if opts.Retention.MaxMessages > 0 {
		perSubject = int64(opts.Retention.MaxMessages)
	}
	cfg := jetstream.StreamConfig{
		Name: streamName(i), Subjects: []string{partitionSubjects(i) + ">"}, Storage: jetstream.FileStorage,
		Replicas: opts.Replicas, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxMsgsPerSubject: perSubject, Duplicates: dedupWindow,
		AllowDirect:        true, // the stall bridge reads this broker's replica (bridgeStall)
		AllowAtomicPublish: true, // a conversation's waiting appends go as one batch (batch.go)
		Metadata:           map[string]string{partitionsKey: strconv.Itoa(n)},
	}
	var st jetstream.Stream
	err := retry(ctx, fmt.Sprintf("room log stream %s (%d replicas)", cfg.Name, opts.Replicas), func(ctx context.Context) error {
		var err error
		st, err = js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	return st, err
}
