package wire

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes bounds user and room names so that topics stay short and a
// hostile client cannot make the broker keep huge keys in memory.
const MaxNameBytes = 64

// ErrInvalidName is wrapped by every name validation error so callers can test
// for it with errors.Is.
var ErrInvalidName = errors.New("invalid name")

// ValidateName reports whether name can be used as a user or room name. kind
// ("room", "user", "nick") only appears in the error message. Names become
// single MQTT topic levels, so wildcards, separators, control characters and
// white space are refused, and names starting with '$' (reserved by MQTT for
// $SYS) are refused too.
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
	}
	for _, r := range name {
		switch {
		case r == '+' || r == '#' || r == '/':
			return fmt.Errorf("%w: %s name %q contains %q (MQTT wildcards and level separators are not allowed)", ErrInvalidName, kind, name, r)
		case r == 0 || unicode.IsControl(r):
			return fmt.Errorf("%w: %s name %q contains a control character", ErrInvalidName, kind, name)
		case unicode.IsSpace(r):
			return fmt.Errorf("%w: %s name %q contains white space", ErrInvalidName, kind, name)
		}
	}
	return nil
}
