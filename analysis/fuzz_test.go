package analysis

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseRec: parseRec never panics on any line; a line it accepts is a
// braced object whose fields are pieces of the line, parsed the same with
// the white space around it that a log may add.
func FuzzParseRec(f *testing.F) {
	for _, s := range []string{
		`{"event":"received","id":"a","seq":1}`,
		`{"after_seq":7,"client_id":"x","duplicate":true,"error":"a \"quoted\", text","id":"a-1","seq":3,"via":"sync","ts_ns":-5}`,
		`{"ack_us":1.5e3,"event":"sent","sent_ns":-}`, `{"id":"\\"}`, `{"id":"\\\"}`, `{,,}`, `{"a":}`, `{}`, `{`, `}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var r rec
		ok := parseRec(line, &r)
		var padded rec
		if okPadded := parseRec(append(append([]byte(" \t"), line...), " \r\n"...), &padded); okPadded != ok || !reflect.DeepEqual(padded, r) {
			t.Fatalf("%q: white space around it changes the parse: %v %+v, then %v %+v", line, ok, r, okPadded, padded)
		}
		if !ok {
			return
		}
		trimmed := bytes.TrimSpace(line)
		if trimmed[0] != '{' || trimmed[len(trimmed)-1] != '}' {
			t.Fatalf("accepted %q, not a braced object", line)
		}
		for name, v := range map[string][]byte{"event": r.event, "node": r.node, "run": r.run, "id": r.id, "from": r.from,
			"room": r.room, "to": r.to, "via": r.via, "fault": r.fault, "phase": r.phase, "target": r.target, "boot": r.boot} {
			if !bytes.Contains(trimmed, v) {
				t.Fatalf("%q: field %s %q is not part of the line", line, name, v)
			}
		}
	})
}

// FuzzParseRecRoundTrip: a line as the chat nodes write it (logrus' JSON:
// encoding/json on the fields, keys sorted) parses back to its fields:
// strings as JSON-encoded, without the quotes (parseRec keeps escapes as
// written), numbers and flags exactly, whatever another field holds.
func FuzzParseRecRoundTrip(f *testing.F) {
	f.Add("received", "alice", "r1", "alice-1-1", "lobby", "live", `a "quoted", text`, int64(1), int64(2), int64(3), int64(4), true)
	f.Add("sent", "b", "", "x", "@b", "sync", `x","seq":99,"id":"forged`, int64(-1), int64(0), int64(-9223372036854775808), int64(9223372036854775807), false)
	f.Add("a\\", "\\\"", "<&>", "é\u2028", "}", "{", "\\", int64(0), int64(0), int64(0), int64(0), false)
	f.Fuzz(func(t *testing.T, event, node, run, id, room, via, msg string, tsNS, sentNS, seq, ackUS int64, dup bool) {
		line, err := json.Marshal(map[string]any{
			"event": event, "node": node, "run": run, "id": id, "room": room, "via": via, "msg": msg, "level": "info",
			"ts_ns": tsNS, "sent_ns": sentNS, "seq": seq, "ack_us": ackUS, "duplicate": dup,
		})
		if err != nil {
			t.Fatal(err)
		}
		var r rec
		if !parseRec(line, &r) {
			t.Fatalf("refused %s", line)
		}
		for _, c := range []struct {
			name string
			got  []byte
			in   string
		}{{"event", r.event, event}, {"node", r.node, node}, {"run", r.run, run}, {"id", r.id, id}, {"room", r.room, room}, {"via", r.via, via}} {
			enc, err := json.Marshal(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := enc[1 : len(enc)-1]; !bytes.Equal(c.got, want) {
				t.Fatalf("%s: field %s parsed as %q, want %q", line, c.name, c.got, want)
			}
		}
		if r.tsNS != tsNS || r.sentNS != sentNS || r.seq != seq || r.ackUS != ackUS || !r.hasAck || r.duplicate != dup {
			t.Fatalf("%s: numbers and flags parsed as %+v", line, r)
		}
	})
}
