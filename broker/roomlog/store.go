package roomlog

import (
	"fmt"
	"os"
	"time"
)

// Store is the room log's storage, one sequence per conversation (a room or
// DM key); an interface, so the log can be a replicated one (broker/cluster).
type Store interface {
	// Append numbers the conversation's next record, encodes it with that
	// number and stores it, as durably as the store promises.
	Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error)
	// Read returns up to limit records of conv with sequence > after, in order.
	Read(conv string, after uint64, limit int) ([]Record, error)
	// Newest returns the last n records of conv, in order.
	Newest(conv string, n int) ([]Record, error)
	// Last is the conversation's highest sequence number (0: none yet).
	Last(conv string) uint64
	// Conversations lists every conversation key with a sequence (also
	// one retention emptied), from which the hook rebuilds its DM index.
	Conversations() []string
	Close() error
}

// DuplicateError is a replicated Store's answer to an Append of a message it
// holds under the same sender and id (a resend after a broker died before
// its PUBACK): the hook routes the record at Seq again.
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
	// Fsync makes Append wait until the record is on disk (group commit);
	// without it the record is in the page cache: it survives kill -9, not
	// a machine crash.
	Fsync bool
	// Retention per conversation (0: unlimited). MaxMessages and MaxBytes
	// (of data) trim the oldest records on append, keeping the newest;
	// MaxAge drops older records, in a quiet conversation at its next read
	// or Counts. Last still counts them; Open gives their space back.
	MaxMessages int
	MaxAge      time.Duration
	MaxBytes    int64

	// Test hooks, so tests need not sleep or fill a disk; zero means the
	// default in parentheses.
	now             func() time.Time                     // MaxAge's clock (time.Now)
	createCompacted func(path string) (*os.File, error)  // compaction's new file (os.OpenFile)
	fsync           func(*os.File) error                 // makes the file durable (datasync)
	after           func(time.Duration) <-chan time.Time // the group commit's gathering timer (time.After)
	chunk           int64                                // how far ahead preallocation extends the file (preallocChunk)
}
