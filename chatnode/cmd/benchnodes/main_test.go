package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
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

// TestPhaseSpreadsTheSends: bare paho nodes send on schedules shifted
// evenly over one interval, as chat nodes that start at their own moments
// do, not all at once.
func TestPhaseSpreadsTheSends(t *testing.T) {
	tests := []struct {
		name  string
		p     params
		i     int
		phase time.Duration
	}{
		{"first node", params{nodes: 10, rate: 100}, 0, 0},
		{"second of ten at 100/s", params{nodes: 10, rate: 100}, 1, time.Millisecond},
		{"last of ten at 100/s", params{nodes: 10, rate: 100}, 9, 9 * time.Millisecond},
		{"second of four at 10/s", params{nodes: 4, rate: 10}, 1, 25 * time.Millisecond},
		{"as fast as possible", params{nodes: 4, rate: 0}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.phase(tt.i); got != tt.phase {
				t.Errorf("phase(%d) = %s, want %s", tt.i, got, tt.phase)
			}
		})
	}
}
