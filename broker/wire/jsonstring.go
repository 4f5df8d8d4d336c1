package wire

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// safe marks the ASCII bytes encoding/json writes as they are in an
// HTML-safe string: printable, and not '"', '\\', '<', '>' or '&'.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		switch c {
		case '"', '\\', '<', '>', '&', 0x7f:
			t[c] = c == 0x7f
		default:
			t[c] = true
		}
	}
	return t
}()

// AppendJSONString appends s as a JSON string exactly as encoding/json
// does with HTML escaping on: control characters, <, > and & as \u escapes
// (\b, \f, \n, \r, \t short), invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped. The envelope encoder and the node's log formatter write strings
// with it, so their output stays byte for byte what encoding/json writes,
// without reflection.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
