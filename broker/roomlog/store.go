package roomlog

import (
	"fmt"
	"os"
	"time"
)

// Store is the room log's storage: one sequence per conversation (a room, or
// a DM conversation key). The hook uses only this interface, so the log can
// move to a replicated engine (NATS JetStream, Kafka) without touching the
// hook or the nodes.
type Store interface {
	// Append assigns the conversation's next sequence number, asks encode
	// for the record's bytes with it, and stores them. When it returns
	// without error the record is as durable as the store promises.
	Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error)
	// Read returns up to limit records of conv with sequence > after, in order.
	Read(conv string, after uint64, limit int) ([]Record, error)
	// Newest returns the last n records of conv, in order.
	Newest(conv string, n int) ([]Record, error)
	// Last is the conversation's highest sequence number (0: none yet).
	Last(conv string) uint64
	// Conversations lists every conversation key the log has a sequence
	// for (also those whose records retention has dropped), so the hook
	// can rebuild its index of each user's DM conversations.
	Conversations() []string
	Close() error
}

// DuplicateError is a replicated Store's answer to an Append of a message it
// already holds under the same sender and id: a publish resent to another
// broker after the first one acknowledged it to the log but died before
// its PUBACK. Seq is the stored record's sequence number; the hook routes
// that record again instead of storing a second copy.
type DuplicateError struct {
	Conv string
	Seq  uint64
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("room log: %s already holds this message as #%d", e.Conv, e.Seq)
}

// Record is one stored message.
type Record struct {
	Seq    uint64
	TimeNS int64
	Data   []byte
}

// Options configure a FileStore.
type Options struct {
	// Fsync makes Append wait until the record is on disk (group commit: one
	// fsync covers every append waiting for it). Without it a record is in
	// the OS page cache when Append returns: it survives kill -9 of the
	// broker, not a machine crash.
	Fsync bool
	// Retention per conversation; zero means unlimited. MaxMessages and
	// MaxBytes (bytes of record data) trim a conversation's oldest records
	// when an append takes it over them, always keeping its newest record.
	// MaxAge drops records stamped longer ago than that on the store's
	// clock, also in a conversation that has gone quiet (when it is next
	// read, or Counts is called). Trimmed records are no longer served; Last
	// still counts them. Open gives their disk space back: when what
	// retention keeps fills less than half of a log of 1 MiB or more, it
	// rewrites the log with only that (see compact).
	MaxMessages int
	MaxAge      time.Duration
	MaxBytes    int64

	// now is the clock MaxAge is measured on; nil means time.Now. Tests set
	// it to move time without sleeping.
	now func() time.Time
	// createCompacted creates compaction's new file; nil means os.OpenFile.
	// Tests set it to make compaction fail.
	createCompacted func(path string) (*os.File, error)
	// fsync makes the log file durable; nil means (*os.File).Sync. Tests
	// set it to count and hold fsyncs.
	fsync func(*os.File) error
	// after is the group commit's timer (how long a leader gathers); nil
	// means time.After. Tests set it to end a gathering at once.
	after func(time.Duration) <-chan time.Time
	// chunk is how far ahead preallocation extends the file; 0 means
	// preallocChunk. The recovery fuzzer makes it small: every input
	// would otherwise preallocate and scan 8 MiB.
	chunk int64
}
