package wire

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes bounds names: short topics, no huge keys in the broker's memory.
const MaxNameBytes = 64

// ErrInvalidName is wrapped by every name validation error, for errors.Is.
var ErrInvalidName = errors.New("invalid name")

// ValidateName reports whether name can be a user or room name (kind: for
// errors). Names are MQTT topic levels: no wildcards, separators, control
// characters, white space or leading '$'. For one meaning per conversation key
// (DMConversation): no ',' or leading '@'. For names that look alike to be
// alike: nothing invisible (category Cf, invisibleRunes), no U+FFFD.
func ValidateName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, kind)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%w: %s name %.20q… is %d bytes, the limit is %d", ErrInvalidName, kind, name, len(name), MaxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %s name %q is not valid UTF-8", ErrInvalidName, kind, name)
	case name[0] == '$':
		return fmt.Errorf("%w: %s name %q starts with '$', which MQTT reserves", ErrInvalidName, kind, name)
	case name[0] == '@':
		return fmt.Errorf("%w: %s name %q starts with '@', which marks direct-message conversations", ErrInvalidName, kind, name)
	}
	if plainASCII(name) {
		return nil
	}
	for _, r := range name {
		switch {
		case r == '+' || r == '#' || r == '/':
			return fmt.Errorf("%w: %s name %q contains %q (MQTT wildcards and level separators are not allowed)", ErrInvalidName, kind, name, r)
		case r == ',':
			return fmt.Errorf("%w: %s name %q contains ',', which separates the users of a direct-message conversation", ErrInvalidName, kind, name)
		case r == 0 || unicode.IsControl(r):
			return fmt.Errorf("%w: %s name %q contains the control character %U", ErrInvalidName, kind, name, r)
		case unicode.IsSpace(r):
			return fmt.Errorf("%w: %s name %q contains white space (%U)", ErrInvalidName, kind, name, r)
		case r == utf8.RuneError:
			return fmt.Errorf("%w: %s name %q contains %U, the replacement character that stands for undecodable bytes", ErrInvalidName, kind, name, r)
		case unicode.Is(unicode.Bidi_Control, r):
			return fmt.Errorf("%w: %s name %q contains %U, a bidirectional text control", ErrInvalidName, kind, name, r)
		case unicode.Is(unicode.Cf, r) || invisibleRunes[r]:
			return fmt.Errorf("%w: %s name %q contains %U, an invisible character", ErrInvalidName, kind, name, r)
		}
	}
	return nil
}

// plainASCII reports whether name is printable ASCII that passes every
// check: the fast path for nearly every name of every message's topic.
func plainASCII(name string) bool {
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b <= ' ' || b >= 0x7f, b == '+', b == '#', b == '/', b == ',':
			return false
		}
	}
	return true
}

// invisibleRunes print as blank without being white space or in category Cf.
var invisibleRunes = map[rune]bool{
	'\u034F': true, // combining grapheme joiner
	'\u115F': true, // Hangul choseong filler
	'\u1160': true, // Hangul jungseong filler
	'\u2800': true, // braille pattern blank
	'\u3164': true, // Hangul filler
	'\uFFA0': true, // halfwidth Hangul filler
}
