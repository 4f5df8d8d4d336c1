package benchcompare

import (
	"image/color"
	"slices"
	"strings"
	"testing"
)

func TestMosquittoConfig(t *testing.T) {
	got := MosquittoConfig(18834)
	want := []string{"listener 18834 127.0.0.1", "allow_anonymous true", "max_queued_messages 100000",
		"persistence false", "set_tcp_nodelay true"}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("config lacks line %q:\n%s", w, got)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "listener") && l != "listener 18834 127.0.0.1" {
			t.Errorf("extra listener %q: the benchmark broker listens on loopback only", l)
		}
	}
}

func TestMosquittoVersion(t *testing.T) {
	tests := map[string]string{
		"mosquitto version 2.0.11\n\nmosquitto is an MQTT v5.0/v3.1.1/v3.1 broker.\n": "2.0.11",
		"Error: Unknown option\nmosquitto version 1.6.9\n":                            "1.6.9",
		"bash: mosquitto: command not found":                                          "",
	}
	for in, want := range tests {
		if got := MosquittoVersion(in); got != want {
			t.Errorf("MosquittoVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseBrokers(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "process,mosquitto", want: []string{"mosquitto", "process"}},
		{in: " mochi , mochi ", want: []string{"mochi"}},
		{in: strings.Join(AllBrokers, ","), want: AllBrokers},
		{in: "mosquitto,rabbit", wantErr: `unknown broker "rabbit"`},
		{in: ",", wantErr: "no brokers"},
	}
	for _, tt := range tests {
		got, err := ParseBrokers(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBrokers(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseBrokers(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestOurArgs(t *testing.T) {
	tests := []struct {
		variant, want string
	}{
		{"log-off", "B -tcp A -http H -log-level warn -procs 1 -room-log=false"},
		{"process", "B -tcp A -http H -log-level warn -procs 1 -data D -durability process"},
		{"machine", "B -tcp A -http H -log-level warn -procs 1 -data D -durability machine"},
		{"cluster", "B -tcp A -http H -log-level warn -data D -durability process"},
	}
	for _, tt := range tests {
		argv, err := ourArgs("B", tt.variant, "A", "H", "D")
		if err != nil {
			t.Fatalf("ourArgs(%s): %v", tt.variant, err)
		}
		if got := strings.Join(argv, " "); got != tt.want {
			t.Errorf("ourArgs(%s) = %q, want %q", tt.variant, got, tt.want)
		}
	}
	if _, err := ourArgs("B", "mosquitto", "A", "H", "D"); err == nil {
		t.Error("ourArgs accepted a variant that is not distchat's")
	}
	for _, b := range AllBrokers[2:] {
		if _, ok := distchatVariants[b]; !ok {
			t.Errorf("broker %q has no row in distchatVariants", b)
		}
	}
}

// TestEveryBrokerHasItsOwnColour keeps compare.png readable: two brokers in
// one colour (the cluster drawn in Mosquitto's grey) read as one.
func TestEveryBrokerHasItsOwnColour(t *testing.T) {
	seen := map[color.Color]string{}
	for _, b := range AllBrokers {
		c := brokerColor(b)
		if other, ok := seen[c]; ok {
			t.Errorf("%s and %s share the colour %v", other, b, c)
		}
		seen[c] = b
	}
}
