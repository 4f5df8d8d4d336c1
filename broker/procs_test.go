package broker_test

import (
	"os"
	"strings"
	"testing"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/broker/brokertest"
)

// TestBrokerCommandProcs: the broker command runs on DefaultProcs
// processors, and GOMAXPROCS in the environment decides when it is set.
func TestBrokerCommandProcs(t *testing.T) {
	bin := brokertest.Build(t)
	var env []string // this process's environment without GOMAXPROCS
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	tests := []struct {
		name string
		env  []string
		want int
	}{
		{"default", env, broker.DefaultProcs},
		{"GOMAXPROCS decides", append(env[:len(env):len(env)], "GOMAXPROCS=3"), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &brokertest.Process{Bin: bin, Args: []string{"-tcp", "127.0.0.1:0", "-http", ""}, Env: tt.env}
			p.Start(t)
			if p.Procs != tt.want {
				t.Errorf("broker runs on %d processors, want %d", p.Procs, tt.want)
			}
			p.Stop(t)
		})
	}
}
