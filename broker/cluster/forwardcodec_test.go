package cluster

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzForwardBody: a forward request's body reads back as it was laid
// out, and no input makes the reader fail otherwise than with an error.
func FuzzForwardBody(f *testing.F) {
	f.Add(appendForward(nil, []forwardedRecord{{timeNS: 1, data: []byte(`{"n":0}`)}, {timeNS: -5, data: []byte("x")}}))
	f.Add([]byte{})
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := parseForwardBody(b)
		if err != nil {
			return
		}
		if again := appendForward(nil, recs); !bytes.Equal(again, b) {
			// Varints have one shortest form; a longer one reads the same.
			back, err := parseForwardBody(again)
			if err != nil || len(back) != len(recs) {
				t.Fatalf("re-encoded body reads as %d records (%v), want %d", len(back), err, len(recs))
			}
		}
		for _, r := range recs {
			if len(r.data) == 0 {
				t.Fatal("a record of no bytes was read")
			}
		}
	})
}

// TestForwardResultsRoundTrip: an answer reads back as its results, and a
// short or unreadable one is an error, not a wrong result.
func TestForwardResultsRoundTrip(t *testing.T) {
	in := []appendResult{{seq: 7, stream: 70}, {seq: 3, stream: 30, dup: true}, {err: errors.New("no")}}
	b, err := encodeResults(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := parseResults(b, len(in))
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if out[i].seq != in[i].seq || out[i].stream != in[i].stream || out[i].dup != in[i].dup || (out[i].err == nil) != (in[i].err == nil) {
			t.Fatalf("result %d: %+v, want %+v", i, out[i], in[i])
		}
	}
	tests := []struct {
		name string
		body string
		n    int
	}{
		{"fewer results", `[{"seq":1,"stream":1}]`, 2},
		{"not json", `{`, 1},
		{"no sequence", `[{"stream":1}]`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseResults([]byte(tt.body), tt.n); err == nil {
				t.Fatalf("parseResults(%s, %d): no error", tt.body, tt.n)
			}
		})
	}
}
