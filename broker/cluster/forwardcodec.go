package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// A forward request (forward.go) carries one conversation's records,
// oldest first; its answer one JSON result per record. Brokers of one
// cluster run one build, so the layout carries no version.

// forwardedRecord is one record of a forward request: its broker's clock
// when stamped and the record stamped as number 0.
type forwardedRecord struct {
	timeNS int64
	data   []byte
}

// maxForwardRecords bounds one request's records (a batch has maxBatch).
const maxForwardRecords = 4 * maxBatch

// appendForward appends recs to b: per record its time as a varint, its
// length as a uvarint, then its bytes.
func appendForward(b []byte, recs []forwardedRecord) []byte {
	for _, r := range recs {
		b = binary.AppendVarint(b, r.timeNS)
		b = binary.AppendUvarint(b, uint64(len(r.data)))
		b = append(b, r.data...)
	}
	return b
}

// parseForwardBody reads a forward request's records, aliasing b.
func parseForwardBody(b []byte) ([]forwardedRecord, error) {
	var recs []forwardedRecord
	for len(b) > 0 {
		if len(recs) == maxForwardRecords {
			return nil, fmt.Errorf("forwarded append: more than %d records", maxForwardRecords)
		}
		t, n := binary.Varint(b)
		if n <= 0 {
			return nil, errors.New("forwarded append: unreadable time")
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size == 0 || size > uint64(len(b)-n) {
			return nil, errors.New("forwarded append: unreadable record length")
		}
		b = b[n:]
		recs = append(recs, forwardedRecord{timeNS: t, data: b[:size:size]})
		b = b[size:]
	}
	if len(recs) == 0 {
		return nil, errors.New("forwarded append: no records")
	}
	return recs, nil
}

// forwardResult is one record's result in a forward answer.
type forwardResult struct {
	Seq    uint64 `json:"seq,omitempty"`
	Stream uint64 `json:"stream,omitempty"`
	Dup    bool   `json:"dup,omitempty"`
	Err    string `json:"err,omitempty"`
}

// encodeResults lays out the answer to a forward request.
func encodeResults(rs []appendResult) ([]byte, error) {
	out := make([]forwardResult, len(rs))
	for i, r := range rs {
		out[i] = forwardResult{Seq: r.seq, Stream: r.stream, Dup: r.dup}
		if r.err != nil {
			out[i] = forwardResult{Err: r.err.Error()}
		}
	}
	return json.Marshal(out)
}

// parseResults reads the answer to a forward request of n records.
func parseResults(b []byte, n int) ([]appendResult, error) {
	var in []forwardResult
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("room log: unreadable answer to a forwarded append: %w", err)
	}
	if len(in) != n {
		return nil, fmt.Errorf("room log: answer to %d forwarded appends has %d results", n, len(in))
	}
	out := make([]appendResult, n)
	for i, r := range in {
		out[i] = appendResult{seq: r.Seq, stream: r.Stream, dup: r.Dup}
		switch {
		case r.Err != "":
			out[i] = appendResult{err: fmt.Errorf("room log: the partition's sequencer: %s", r.Err)}
		case r.Seq == 0 || r.Stream == 0:
			return nil, fmt.Errorf("room log: answer to a forwarded append: result %d has no sequence", i)
		}
	}
	return out, nil
}
