package walsync_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/distchat/distchat/broker/walsync"
)

func newFS(t testing.TB, interval time.Duration) *walsync.FS {
	t.Helper()
	fs, err := walsync.New(vfs.Default, interval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fs.Close(); err != nil {
			t.Error(err)
		}
	})
	return fs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A WAL's Sync returns at once with the data in the file; the fsync
// follows within the interval, once for many Syncs. Other files keep
// their own Sync.
func TestSyncIsDeferred(t *testing.T) {
	dir := t.TempDir()
	fs := newFS(t, 20*time.Millisecond)
	f, err := fs.Create(filepath.Join(dir, "000001.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := fmt.Fprintf(f, "record %d\n", i); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "000001.log")) // what a kill -9 leaves: the page cache
	if err != nil || len(b) == 0 {
		t.Fatalf("after Sync the file holds %d bytes (%v)", len(b), err)
	}
	waitFor(t, "the deferred fsync", func() bool { return fs.Syncs() >= 1 })
	if n := fs.Syncs(); n > 10 {
		t.Errorf("%d fsyncs for 100 Syncs in a burst, want a handful", n)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := fs.Create(filepath.Join(dir, "MANIFEST-000001"))
	if err != nil {
		t.Fatal(err)
	}
	before := fs.Syncs()
	if _, err := io.WriteString(m, "x"); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if fs.Syncs() != before {
		t.Errorf("a MANIFEST Sync went through the WAL loop")
	}
}

func TestNewRejectsBadInterval(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Millisecond} {
		if _, err := walsync.New(vfs.Default, d); err == nil {
			t.Errorf("interval %s accepted", d)
		}
	}
}

// Pebble in Sync mode over FS keeps every write a kill -9 could hit: with
// no fsync at all yet (an interval of an hour), a copy of the directory
// taken while the database is open (what the disk holds after the process
// dies: its page cache) opens with every key.
func TestPebbleKeepsEveryWriteOnKill(t *testing.T) {
	dir := t.TempDir()
	fs := newFS(t, time.Hour)
	db, err := pebble.Open(dir, &pebble.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		if err := db.Set([]byte(fmt.Sprint("key-", i)), []byte("value"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if fs.Syncs() != 0 {
		t.Fatalf("%d WAL fsyncs within the hour", fs.Syncs())
	}
	copyDir := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	killed, err := pebble.Open(copyDir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer killed.Close()
	for i := range n {
		if _, closer, err := killed.Get([]byte(fmt.Sprint("key-", i))); err != nil {
			t.Fatalf("key-%d lost: %v", i, err)
		} else if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkPebbleSet is one synced write of a session-store sized record:
// Pebble's own fsync per write, FS's deferred one, and NoSync.
func BenchmarkPebbleSet(b *testing.B) {
	for _, mode := range []string{"fsync", "walsync", "nosync"} {
		b.Run(mode, func(b *testing.B) {
			opts := &pebble.Options{}
			wo := pebble.Sync
			switch mode {
			case "walsync":
				opts.FS = newFS(b, 5*time.Millisecond)
			case "nosync":
				wo = pebble.NoSync
			}
			db, err := pebble.Open(b.TempDir(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			val := make([]byte, 300)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := db.Set([]byte(fmt.Sprint("inflight-", i)), val, wo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
