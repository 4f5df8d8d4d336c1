package roomlog

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// An index entry holds no pointer, so the garbage collector never scans a
// conversation's index, and it stays at 32 bytes a record.
func TestIndexEntryHoldsNoPointer(t *testing.T) {
	typ := reflect.TypeFor[entry]()
	for i := range typ.NumField() {
		switch f := typ.Field(i); f.Type.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func:
			t.Errorf("entry.%s is a %s: the garbage collector would scan every index", f.Name, f.Type)
		}
	}
	if size := typ.Size(); size > 32 {
		t.Errorf("entry takes %d bytes, want at most 32", size)
	}
}

// BenchmarkGCWithLargeIndex is one full garbage collection of a process
// whose room log indexes a million records (file mode): what the index
// adds to every collection. It also reports the heap the index takes.
func BenchmarkGCWithLargeIndex(b *testing.B) {
	const records = 1_000_000
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	data := make([]byte, 40)
	for i := range records {
		conv := fmt.Sprintf("rooms/r%d", i%100)
		if _, err := s.Append(conv, 1, func(uint64) ([]byte, error) { return data, nil }); err != nil {
			b.Fatal(err)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapPerRecord := float64(after.HeapAlloc-before.HeapAlloc) / records
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		runtime.GC()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N)/1000, "ms/gc")
	b.ReportMetric(heapPerRecord, "heap-B/record")
}
