package analysis

import (
	"bytes"
	"strconv"
)

// rec holds the fields of one log line the analysis uses, as slices of the
// line (valid until the next line is read).
type rec struct {
	event, node, run, id, from, room, to, via, fault, phase, target, boot, group []byte
	tsNS, sentNS, recvNS, seq, ackUS, bytes                                      int64
	hasAck, duplicate                                                            bool
}

// parseRec fills r from one logrus JSON line in a single scan; false for
// anything that is not a flat JSON object. Strings keep their escapes
// (names and ids have none).
func parseRec(line []byte, r *rec) bool {
	*r = rec{}
	line = bytes.TrimSpace(line)
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return false
	}
	for i, n := 1, len(line)-1; i < n; {
		for i < n && (line[i] == ',' || line[i] == ' ') {
			i++
		}
		if i >= n {
			break
		}
		k := bytes.IndexByte(line[i+1:n], '"') + i + 1 // the key's closing quote
		if line[i] != '"' || k == i || k+1 >= n || line[k+1] != ':' {
			return false
		}
		key := line[i+1 : k]
		i = k + 2
		var val []byte
		if line[i] == '"' {
			j := i // the value's closing quote: the first unescaped one
			for j == i || escaped(line, j) {
				q := bytes.IndexByte(line[j+1:n], '"')
				if q < 0 {
					return false
				}
				j += q + 1
			}
			val = line[i+1 : j]
			i = j + 1
		} else {
			j := bytes.IndexByte(line[i:n], ',')
			if j < 0 {
				j = n - i
			}
			val, i = line[i:i+j], i+j
		}
		assign(r, key, val)
	}
	return true
}

// escaped reports whether the quote at line[j] is escaped.
func escaped(line []byte, j int) bool {
	b := 0
	for k := j - 1; k >= 0 && line[k] == '\\'; k-- {
		b++
	}
	return b%2 == 1
}

func assign(r *rec, key, val []byte) {
	switch string(key) {
	case "event":
		r.event = val
	case "node":
		r.node = val
	case "run":
		r.run = val
	case "id":
		r.id = val
	case "from":
		r.from = val
	case "room":
		r.room = val
	case "to":
		r.to = val
	case "via":
		r.via = val
	case "fault":
		r.fault = val
	case "phase":
		r.phase = val
	case "target":
		r.target = val
	case "boot":
		r.boot = val
	case "group":
		r.group = val
	case "bytes":
		r.bytes = atoi(val)
	case "ts_ns":
		r.tsNS = atoi(val)
	case "sent_ns":
		r.sentNS = atoi(val)
	case "recv_ns":
		r.recvNS = atoi(val)
	case "seq":
		r.seq = atoi(val)
	case "ack_us":
		r.ackUS, r.hasAck = atoi(val), true
	case "duplicate":
		r.duplicate = string(val) == "true"
	}
}

// atoi parses a number, quickly when it is an integer; 0 when it is none.
func atoi(b []byte) int64 {
	digits := bytes.TrimPrefix(b, []byte{'-'})
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			v, err := strconv.ParseFloat(string(b), 64) // unusual: exponent or fraction
			if err != nil {
				return 0
			}
			return int64(v)
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(b) {
		return -n
	}
	return n
}
