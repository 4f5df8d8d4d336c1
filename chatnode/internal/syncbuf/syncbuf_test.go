package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Concurrent writes are all kept, each whole; Take empties the buffer.
func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("line\n", 800) {
		t.Fatalf("%d bytes, want 800 whole lines", len(got))
	}
	if got := b.Take(); len(got) != 800*5 || b.String() != "" {
		t.Fatalf("Take: %d bytes, then %q left", len(got), b.String())
	}
}
