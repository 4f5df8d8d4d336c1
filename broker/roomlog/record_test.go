package roomlog

import (
	"bytes"
	"fmt"
	"testing"
)

// appendRecord lays a record out after whatever dst holds, byte for byte
// as it does into an empty one, so the store can reuse one buffer.
func TestAppendRecordAfterOtherBytes(t *testing.T) {
	tests := []struct {
		name   string
		prefix []byte
		conv   string
		data   []byte
	}{
		{"empty buffer", nil, "rooms/lobby", []byte(`{"text":"hi"}`)},
		{"after a record", appendRecord(nil, "dm/alice/bob", 9, 1, []byte("x")), "rooms/lobby", []byte("y")},
		{"no data", []byte("junk"), "c", nil},
		{"large data", make([]byte, 3), "rooms/big", bytes.Repeat([]byte("z"), 100<<10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := bytes.Clone(tc.prefix)
			got := appendRecord(prefix, tc.conv, 42, 1700000000, tc.data)
			want := append(bytes.Clone(tc.prefix), appendRecord(nil, tc.conv, 42, 1700000000, tc.data)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("appendRecord after %d bytes differs from the prefix plus the record alone", len(tc.prefix))
			}
			conv, seq, ts, off, err := parseBody(got[len(tc.prefix)+headerLen:])
			if err != nil || conv != tc.conv || seq != 42 || ts != 1700000000 ||
				!bytes.Equal(got[len(tc.prefix)+headerLen+off:], tc.data) {
				t.Fatalf("parsed back %q #%d at %d, %v; want %q #42 at 1700000000", conv, seq, ts, err, tc.conv)
			}
		})
	}
}

// The store lays every record out in one reused buffer: records of
// shrinking and growing sizes, past the size it keeps, all read back whole
// after reopening.
func TestReusedRecordBufferKeepsEveryRecord(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync=%t", fsync), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Fsync: fsync})
			if err != nil {
				t.Fatal(err)
			}
			sizes := []int{300, 10, maxKeptEncoding + 1, 5, 2 * maxKeptEncoding, 300, 1}
			var want [][]byte
			for i, n := range sizes {
				data := bytes.Repeat([]byte{byte('a' + i)}, n)
				want = append(want, data)
				if _, err := s.Append("rooms/lobby", 0, func(uint64) ([]byte, error) { return data, nil }); err != nil {
					t.Fatalf("append %d (%d bytes): %v", i+1, n, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{Fsync: fsync})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			recs, err := s.Read("rooms/lobby", 0, len(sizes)+1)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(sizes) {
				t.Fatalf("read %d records after reopening, want %d", len(recs), len(sizes))
			}
			for i, r := range recs {
				if r.Seq != uint64(i+1) || !bytes.Equal(r.Data, want[i]) {
					t.Fatalf("record %d: #%d with %d bytes, want #%d with %d", i, r.Seq, len(r.Data), i+1, len(want[i]))
				}
			}
		})
	}
}
