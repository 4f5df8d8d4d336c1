package cluster

import "testing"

func TestSubjectRoundTrip(t *testing.T) {
	for _, conv := range []string{"lobby", "@alice,bob", "a.b", "*", ">", "with space", "ünï", "x/y"} {
		s := subjectOf(conv)
		for _, c := range s[len(logPrefix)+1:] {
			if c == '.' || c == '*' || c == '>' || c == ' ' {
				t.Fatalf("subject %q of %q has %q in its token", s, conv, c)
			}
		}
		got, err := convOf(s)
		if err != nil || got != conv {
			t.Fatalf("convOf(%q) = %q, %v; want %q", s, got, err, conv)
		}
	}
}

func FuzzConvOf(f *testing.F) {
	f.Add("roomlog.bG9iYnk")
	f.Add("roomlog.")
	f.Add("other.x")
	f.Fuzz(func(t *testing.T, subject string) {
		conv, err := convOf(subject)
		if err == nil && subjectOf(conv) != subject {
			t.Fatalf("convOf(%q) = %q, whose subject is %q", subject, conv, subjectOf(conv))
		}
	})
}
