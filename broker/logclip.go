package broker

import (
	"strconv"
	"unicode/utf8"
)

// maxLoggedString is how many bytes of a client-supplied string (user name,
// client id, topic, filter) a log line carries: MQTT allows 65535 bytes.
const maxLoggedString = 64

// maxLoggedReason bounds a refusal reason that quotes client text (a
// malformed topic's bad part): long enough for the explanation around it.
const maxLoggedReason = 256

// clip returns s for a log line: whole if it is short, else its first
// maxLoggedString bytes (cut on a character boundary) and its full length,
// e.g. "mallorymallory…(65536 bytes)".
func clip(s string) string { return clipTo(s, maxLoggedString) }

// clipTo is clip with a bound of n bytes.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
