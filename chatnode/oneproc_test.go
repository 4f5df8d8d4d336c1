package chatnode

import "testing"

func TestOneProc(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"-nick", "alice"}, true},
		{[]string{"bench", "-rate", "100"}, true},
		{[]string{"web", "-listen", ":8081"}, false},
	}
	for _, tc := range tests {
		if got := OneProc(tc.args); got != tc.want {
			t.Errorf("OneProc(%q) = %t, want %t", tc.args, got, tc.want)
		}
	}
}
