// Package walsync lets Pebble's write-ahead log be fsynced on a timer
// instead of on every write, for the broker's session store.
//
// Mochi writes every in-flight QoS 1 delivery to its store and deletes it on
// PUBACK, synchronously on the publisher's packet goroutine. In Pebble's Sync
// mode each of those writes waits for write() and fsync of the WAL; the
// fsync costs 0.8-2 ms on this project's machine and its stalls set the
// broker's p99 latency. In NoSync mode Pebble returns before the write()
// (the record is still in its own buffer), and a kill -9 lost queued
// messages (field notes). FS keeps Pebble in Sync mode, so a write returns
// only after its record is in the operating system's page cache (a kill -9
// of the broker loses nothing), and turns the WAL's fsync into a request that
// a background loop carries out for every file at once each interval (a
// machine crash loses what was written since the last fsync completed: the
// interval plus the fsync's own time, which the disk's stalls can stretch).
// Every other file (tables, MANIFEST) keeps its real fsyncs.
package walsync

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/vfs"
)

// FS is a vfs.FS whose write-ahead log files are fsynced every interval.
// Close stops it after a last fsync.
type FS struct {
	vfs.FS
	interval time.Duration

	mu    sync.Mutex
	dirty map[*walFile]struct{}
	err   error // the first failed fsync: every later Sync returns it

	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	syncs atomic.Int64
}

// New wraps inner; interval must be positive.
func New(inner vfs.FS, interval time.Duration) (*FS, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("walsync: interval %s must be positive", interval)
	}
	fs := &FS{FS: inner, interval: interval, dirty: map[*walFile]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go fs.loop()
	return fs, nil
}

// Syncs is the number of successful real fsyncs of WAL files so far.
func (fs *FS) Syncs() int64 { return fs.syncs.Load() }

// Close fsyncs what is pending and stops the loop. Pebble must be closed
// first; Close is idempotent.
func (fs *FS) Close() error {
	fs.once.Do(func() {
		close(fs.stop)
		<-fs.done
	})
	return fs.failure()
}

func (fs *FS) loop() {
	defer close(fs.done)
	t := time.NewTicker(fs.interval)
	defer t.Stop()
	for {
		select {
		case <-fs.stop:
			fs.syncDirty()
			return
		case <-t.C:
			fs.syncDirty()
		}
	}
}

// syncDirty fsyncs every WAL file written since the last round.
func (fs *FS) syncDirty() {
	fs.mu.Lock()
	files := make([]*walFile, 0, len(fs.dirty))
	for f := range fs.dirty {
		files = append(files, f)
	}
	clear(fs.dirty)
	fs.mu.Unlock()
	for _, f := range files {
		if err := f.realSync(); err != nil {
			fs.fail(fmt.Errorf("fsync write-ahead log: %w", err))
			continue
		}
		fs.syncs.Add(1)
	}
}

func (fs *FS) fail(err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.err == nil {
		fs.err = err
	}
}

func (fs *FS) failure() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.err
}

// request marks f for the next round and reports an earlier failure, so
// Pebble stops writing to a log that can no longer be made durable.
func (fs *FS) request(f *walFile) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.dirty[f] = struct{}{}
	return fs.err
}

func (fs *FS) forget(f *walFile) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.dirty, f)
}

// isWAL reports whether name is a Pebble write-ahead log ("000123.log").
func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

// Create implements vfs.FS.
func (fs *FS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil || !isWAL(name) {
		return f, err
	}
	return &walFile{File: f, fs: fs}, nil
}

// ReuseForWrite implements vfs.FS: Pebble recycles old logs this way.
func (fs *FS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	if err != nil || !isWAL(newname) {
		return f, err
	}
	return &walFile{File: f, fs: fs}, nil
}

// walFile is a WAL file whose syncs are deferred to FS's loop.
type walFile struct {
	vfs.File
	fs     *FS
	mu     sync.Mutex // a real fsync and Close do not overlap
	closed bool
}

// Sync implements vfs.File: the data is already written; the fsync follows
// within the interval.
func (f *walFile) Sync() error { return f.fs.request(f) }

// SyncData implements vfs.File like Sync.
func (f *walFile) SyncData() error { return f.fs.request(f) }

// SyncTo implements vfs.File: queued, not a full sync.
func (f *walFile) SyncTo(int64) (fullSync bool, err error) { return false, f.fs.request(f) }

func (f *walFile) realSync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	return f.File.Sync()
}

// Close implements vfs.File with a real fsync first: a log Pebble is done
// with is durable.
func (f *walFile) Close() error {
	f.fs.forget(f)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return errors.Join(f.File.Sync(), f.File.Close())
}
