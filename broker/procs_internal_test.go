package broker

import (
	"testing"

	"github.com/distchat/distchat/config"
)

// TestCommandProcs: a single broker runs on DefaultProcs processors, a
// cluster node on Go's choice, and GOMAXPROCS in the environment decides
// when set.
func TestCommandProcs(t *testing.T) {
	single := config.DefaultBroker()
	cluster := config.DefaultBroker()
	cluster.Cluster.Node = "b1"
	tests := []struct {
		name string
		cfg  config.Broker
		env  string
		want int
	}{
		{"single broker", single, "", DefaultProcs},
		{"single broker, GOMAXPROCS set", single, "2", 0},
		{"cluster node", cluster, "", 0},
		{"cluster node, GOMAXPROCS set", cluster, "1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commandProcs(tt.cfg, tt.env); got != tt.want {
				t.Errorf("commandProcs = %d, want %d", got, tt.want)
			}
		})
	}
}
