package benchcompare

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantLoads []string
		wantErr   string
	}{
		{name: "defaults", wantLoads: []string{"pairs-1", "pairs-10", "chat-3x333", "chat-10x100", "ramp"}},
		{name: "subset", args: []string{"-loads", "ramp,pairs-1", "-brokers", "process"}, wantLoads: []string{"pairs-1", "ramp"}},
		{name: "unknown load", args: []string{"-loads", "pairs-2"}, wantErr: `unknown load "pairs-2"`},
		{name: "unknown broker", args: []string{"-brokers", "emqx"}, wantErr: `unknown broker "emqx"`},
		{name: "rates not increasing", args: []string{"-ramp-rates", "100,50"}, wantErr: "increasing"},
		{name: "rate not a number", args: []string{"-ramp-rates", "fast"}, wantErr: "increasing"},
		{name: "zero duration", args: []string{"-chat-duration", "0s"}, wantErr: "durations positive"},
		{name: "stray argument", args: []string{"README.md"}, wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range c.loads {
				names = append(names, l.Name)
			}
			if !slices.Equal(names, tt.wantLoads) {
				t.Errorf("loads %v, want %v", names, tt.wantLoads)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: error %v, want flag.ErrHelp", err)
	}
}

func TestLoadsShape(t *testing.T) {
	o := Options{Size: 256, PairsWarmup: time.Second, PairsDuration: 5 * time.Second, ChatDuration: 10 * time.Second,
		RampStep: 5 * time.Second, RampRates: []float64{100, 200}}
	for _, l := range Loads(o) {
		switch l.Kind {
		case KindPairs:
			if l.Pairs.Pairs < 1 || l.Pairs.Size != 256 || l.Pairs.Duration != o.PairsDuration {
				t.Errorf("%s: %+v", l.Name, l.Pairs)
			}
		case KindChat, KindRamp:
			if l.Chat.Nodes < 2 || l.Chat.Size != 256 {
				t.Errorf("%s: %+v", l.Name, l.Chat)
			}
		}
		wantRounds := 1 // o.PairsRounds is 0: at least one round
		if l.Rounds != wantRounds {
			t.Errorf("%s: %d rounds, want %d", l.Name, l.Rounds, wantRounds)
		}
		if l.Describe() == "" || strings.HasPrefix(l.Describe(), "LoadKind") {
			t.Errorf("%s has no description", l.Name)
		}
	}
	args := ChatConfig{Nodes: 3, Rate: 333, Duration: 10 * time.Second, Size: 256, Linger: 3 * time.Second}.
		nodeArgs("chatnode", "tcp://127.0.0.1:1", "n0", "n0.log", "chat-3x333-mosquitto")
	want := "chatnode bench -broker tcp://127.0.0.1:1 -nick n0 -room bench -rate 333 -duration 10s -peers 3 -size 256 -linger 3s -log n0.log -run chat-3x333-mosquitto -log-level info"
	if got := strings.Join(args, " "); got != want {
		t.Errorf("node args\n got %s\nwant %s", got, want)
	}
}
