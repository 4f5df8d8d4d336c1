package broker_test

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestBrokerProcs: the broker binary runs on Go's default processors;
// GOMAXPROCS in the environment or -procs pins it, and -procs wins.
func TestBrokerProcs(t *testing.T) {
	bin := brokertest.Build(t)
	var env []string // this process's environment without GOMAXPROCS
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	withEnv := append(env[:len(env):len(env)], "GOMAXPROCS=3")
	goDefault := runtime.GOMAXPROCS(0) // this test binary's, when go test sets no -cpu
	if os.Getenv("GOMAXPROCS") != "" {
		goDefault = runtime.NumCPU()
	}
	tests := []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{"Go's default", nil, env, goDefault},
		{"GOMAXPROCS pins", nil, withEnv, 3},
		{"-procs pins", []string{"-procs", "1"}, env, 1},
		{"-procs wins over GOMAXPROCS", []string{"-procs", "2"}, withEnv, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-tcp", "127.0.0.1:0", "-http", ""}, tt.args...)
			p := &brokertest.Process{Bin: bin, Args: args, Env: tt.env}
			p.Start(t)
			if p.Procs != tt.want {
				t.Errorf("broker runs on %d processors, want %d", p.Procs, tt.want)
			}
			p.Stop(t)
		})
	}
}
