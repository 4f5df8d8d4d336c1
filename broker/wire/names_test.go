package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateNameRefusesInvisible(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // in the error
	}{
		{"zero width space", "ali\u200Bce", "U+200B"},
		{"zero width non-joiner", "ali\u200Cce", "U+200C"},
		{"zero width joiner", "\u200Dalice", "U+200D"},
		{"word joiner", "alice\u2060", "U+2060"},
		{"byte order mark", "\uFEFFalice", "U+FEFF"},
		{"soft hyphen", "al\u00ADice", "U+00AD"},
		{"left-to-right mark", "alice\u200E", "U+200E"},
		{"right-to-left override", "\u202Eecila", "U+202E"},
		{"right-to-left isolate", "a\u2067b", "U+2067"},
		{"pop directional isolate", "a\u2069", "U+2069"},
		{"arabic letter mark", "a\u061Cb", "U+061C"},
		{"mongolian vowel separator", "a\u180Eb", "U+180E"},
		{"invisible times", "a\u2062b", "U+2062"},
		{"interlinear annotation", "a\uFFF9b", "U+FFF9"},
		{"tag character", "a\U000E0041b", "U+E0041"},
		{"hangul filler", "\u3164", "U+3164"},
		{"halfwidth hangul filler", "a\uFFA0", "U+FFA0"},
		{"braille blank", "a\u2800b", "U+2800"},
		{"combining grapheme joiner", "a\u034Fb", "U+034F"},
		{"control character", "bell\a", "U+0007"},
		{"no-break space", "a\u00A0b", "U+00A0"},
		{"ideographic space", "a\u3000b", "U+3000"},
		{"replacement character", "a\uFFFDb", "U+FFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName("room", tt.in)
			if err == nil {
				t.Fatalf("ValidateName(%q) accepted it", tt.in)
			}
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("error %v does not wrap ErrInvalidName", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n\u200B\u200D\u202E\uFEFF") {
				t.Errorf("error %q is not one clean line", err)
			}
		})
	}
}

func TestValidateNameKeepsVisibleUnicode(t *testing.T) {
	for _, name := range []string{
		"Zoë", "Łódź", "東京", "Αθήνα", "مرحبا", "שלום", "café-2", "naïve_room", "emoji🙂", "a.b-c_d",
	} {
		if err := ValidateName("room", name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", name, err)
		}
	}
}

// TestValidateNameKeepsConversationKeysUnambiguous: a name with ',' or a
// leading '@' would make a conversation key mean two things (a room named
// "@alice,bob" sharing alice's and bob's DM log; the DMs of "a,b" and "c"
// readable by "a").
func TestValidateNameKeepsConversationKeysUnambiguous(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want string
	}{
		{"@alice,bob", false, "starts with '@'"},
		{"@alice", false, "starts with '@'"},
		{"a,b", false, "contains ','"},
		{"alice,", false, "contains ','"},
		{"alice@home", true, ""},
		{"a;b", true, ""},
	}
	for _, tt := range tests {
		err := ValidateName("room", tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateName(%q) = %q, want it to say %q", tt.in, err, tt.want)
		}
	}
}
