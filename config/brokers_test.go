package config_test

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/distchat/distchat/config"
)

// nodeFlags binds -broker as the chat node does.
func nodeFlags(cfg *config.Node) *flag.FlagSet {
	fs := flag.NewFlagSet("chatnode", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.ListVar(fs, (*[]string)(&cfg.Broker), "broker", "")
	fs.StringVar(&cfg.Nick, "nick", cfg.Nick, "")
	return fs
}

// The broker list comes from YAML (a string, a comma-separated string or a
// list), the environment or the flag, with the usual precedence.
func TestBrokerList(t *testing.T) {
	one := config.Brokers{"tcp://b1:1883"}
	three := config.Brokers{"tcp://b1:1883", "tcp://b2:1883", "tcp://b3:1883"}
	tests := []struct {
		name string
		yaml string
		env  string
		args []string
		want config.Brokers
	}{
		{name: "default", want: config.DefaultNode().Broker},
		{name: "yaml string", yaml: "broker: tcp://b1:1883\n", want: one},
		{name: "yaml comma string", yaml: "broker: tcp://b1:1883, tcp://b2:1883,tcp://b3:1883\n", want: three},
		{name: "yaml list", yaml: "broker: [tcp://b1:1883, tcp://b2:1883, tcp://b3:1883]\n", want: three},
		{name: "yaml block list", yaml: "broker:\n  - tcp://b1:1883\n  - tcp://b2:1883\n  - tcp://b3:1883\n", want: three},
		{name: "env over yaml", yaml: "broker: tcp://x:1\n", env: "tcp://b1:1883,tcp://b2:1883,tcp://b3:1883", want: three},
		{name: "flag over env", env: "tcp://x:1,tcp://y:1", args: []string{"-broker", "tcp://b1:1883"}, want: one},
		{name: "flag list", args: []string{"-broker", "tcp://b1:1883,tcp://b2:1883", "-broker", "tcp://b3:1883"}, want: three},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DISTCHAT_CONFIG", "")
			if tc.env != "" {
				t.Setenv("DISTCHAT_BROKER", tc.env)
			}
			args := append([]string{"-nick", "alice"}, tc.args...)
			if tc.yaml != "" {
				args = append([]string{"-config", writeFile(t, "node.yaml", tc.yaml)}, args...)
			}
			cfg := config.DefaultNode()
			if err := config.Load(nodeFlags(&cfg), args, &cfg, config.DefaultNode()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Broker, tc.want) {
				t.Errorf("broker %q, want %q", cfg.Broker, tc.want)
			}
		})
	}
}

// Every bad entry of a broker list is reported.
func TestBrokerListProblems(t *testing.T) {
	tests := []struct {
		name    string
		brokers config.Brokers
		want    []string
	}{
		{name: "empty", brokers: nil, want: []string{"at least one URL"}},
		{name: "no scheme", brokers: config.Brokers{"tcp://b1:1883", "b2:1883"}, want: []string{`"b2:1883" needs a scheme`}},
		{name: "no host", brokers: config.Brokers{"tcp://"}, want: []string{"has no host:port"}},
		{name: "twice", brokers: config.Brokers{"tcp://b1:1883", "tcp://b1:1883"}, want: []string{"listed twice"}},
		{name: "two problems", brokers: config.Brokers{"http://b1:80", "tcp://"}, want: []string{"needs a scheme", "no host:port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.brokers.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if err := (config.Brokers{"tcp://b1:1883", "ws://b2:8080/mqtt"}).Validate(); err != nil {
		t.Errorf("good list refused: %v", err)
	}
}

// A broker entry of the wrong YAML shape is one clear error.
func TestBrokerListBadYAML(t *testing.T) {
	cfg := config.DefaultNode()
	err := config.ReadYAML(writeFile(t, "node.yaml", "broker: {host: b1}\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "want a URL or a list of URLs") {
		t.Fatalf("error %v, want the broker shape named", err)
	}
}
