package cluster

import "testing"

func TestSubjectRoundTrip(t *testing.T) {
	for i, conv := range []string{"lobby", "@alice,bob", "a.b", "*", ">", "with space", "ünï", "x/y"} {
		p := i % 3
		s := subjectOf(p, conv)
		for _, c := range s[len(partitionSubjects(p)):] {
			if c == '.' || c == '*' || c == '>' || c == ' ' {
				t.Fatalf("subject %q of %q has %q in its token", s, conv, c)
			}
		}
		gotP, got, err := convOf(s)
		if err != nil || got != conv || gotP != p {
			t.Fatalf("convOf(%q) = %d, %q, %v; want %d, %q", s, gotP, got, err, p, conv)
		}
	}
}

func FuzzConvOf(f *testing.F) {
	f.Add("roomlog.0.bG9iYnk")
	f.Add("roomlog.12.bG9iYnk")
	f.Add("roomlog.01.bG9iYnk")
	f.Add("roomlog.")
	f.Add("other.x")
	f.Fuzz(func(t *testing.T, subject string) {
		p, conv, err := convOf(subject)
		if err == nil && subjectOf(p, conv) != subject {
			t.Fatalf("convOf(%q) = %d, %q, whose subject is %q", subject, p, conv, subjectOf(p, conv))
		}
	})
}
