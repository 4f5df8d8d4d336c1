package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBadFlags: a load that cannot run is refused before anything starts,
// one line per problem, exit code 2.
func TestBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"-nodes", "0"}, []string{"benchnodes: -nodes: 0 must be at least 1"}},
		{[]string{"-rate", "-1", "-duration", "-1s"}, []string{"benchnodes: -rate: -1 must be a positive number", "benchnodes: -duration: -1s must be positive"}},
		{[]string{"-size", "-5"}, []string{"benchnodes: -size: -5 cannot be negative"}},
		{[]string{"-client", "mosquitto_sub"}, []string{`benchnodes: -client: "mosquitto_sub" must be chatnode or paho`}},
		{[]string{"-client", "paho", "-cpuprofile", "x"}, []string{"benchnodes: -cpuprofile: only with -client chatnode"}},
	} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), tt.args, &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2", tt.args, code)
		}
		if got := strings.Split(strings.TrimSpace(errs.String()), "\n"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%v: stderr %q, want %q", tt.args, got, tt.want)
		}
	}
}
