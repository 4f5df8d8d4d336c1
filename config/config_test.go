package config_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/config"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func brokerFlags(cfg *config.Broker) *flag.FlagSet {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.TCP, "tcp", cfg.TCP, "")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "")
	return fs
}

func loadBroker(t *testing.T, args ...string) (config.Broker, error) {
	t.Helper()
	cfg := config.DefaultBroker()
	err := config.Load(brokerFlags(&cfg), args, &cfg, config.DefaultBroker())
	return cfg, err
}

// The file sets, the environment overrides the file, flags override both;
// what nobody sets keeps its default.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "broker.yaml", `
tcp: 127.0.0.1:1001
http: 127.0.0.1:2001
log_level: debug
limits:
  max_inflight: 100
  message_expiry: 1h
`)
	t.Setenv("DISTCHAT_HTTP", "127.0.0.1:2002")
	t.Setenv("DISTCHAT_LOG_LEVEL", "warn")
	t.Setenv("DISTCHAT_LIMITS_MAX_INFLIGHT", "200")
	t.Setenv("DISTCHAT_DURABILITY", "machine")
	cfg, err := loadBroker(t, "-config", file, "-log-level", "error")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]any{
		"tcp (file)":                  {cfg.TCP, "127.0.0.1:1001"},
		"http (env over file)":        {cfg.HTTP, "127.0.0.1:2002"},
		"log_level (flag over both)":  {cfg.LogLevel, "error"},
		"max_inflight (env, nested)":  {cfg.Limits.MaxInflight, 200},
		"message_expiry (file)":       {cfg.Limits.MessageExpiry, time.Hour},
		"durability (env)":            {cfg.Durability, config.DurabilityMachine},
		"session_expiry (default)":    {cfg.Limits.SessionExpiry, config.DefaultBroker().Limits.SessionExpiry},
		"room_log.enabled (default)":  {cfg.RoomLog.Enabled, true},
		"storage (default)":           {cfg.Storage, "pebble"},
		"max_packet_size (default)":   {cfg.Limits.MaxPacketSize, 256 * 1024},
		"receive_maximum (default)":   {cfg.Limits.ReceiveMaximum, 1024},
		"open mode (no users, dev)":   {cfg.Open(), true},
		"anonymous (default, no dev)": {cfg.Auth.Anonymous, false},
	}
	for name, w := range want {
		if !reflect.DeepEqual(w[0], w[1]) {
			t.Errorf("%s = %v, want %v", name, w[0], w[1])
		}
	}
}

func TestConfigFromEnvironmentVariable(t *testing.T) {
	t.Setenv("DISTCHAT_CONFIG", writeFile(t, "b.yaml", "tcp: 127.0.0.1:1883\nhttp: ''\n"))
	cfg, err := loadBroker(t)
	if err != nil || cfg.HTTP != "" {
		t.Fatalf("cfg.HTTP = %q, err %v; want the file's empty value", cfg.HTTP, err)
	}
}

// Every problem is reported, each on its own line.
func TestBrokerProblems(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hash)
	for _, tc := range []struct {
		name string
		yaml string
		args []string
		env  map[string]string
		want []string
	}{
		{name: "unknown key", yaml: "tcp: 127.0.0.1:1\nlisten: all\nlimits:\n  max_inflite: 3\n",
			want: []string{"line 2: unknown key listen", "line 4: unknown key max_inflite"}},
		{name: "bad address", args: []string{"-tcp", "localhost", "-http", "127.0.0.1:99999"},
			want: []string{`tcp: "localhost" is not host:port`, `http: "127.0.0.1:99999" has an invalid port`}},
		{name: "empty tcp", args: []string{"-tcp", ""}, want: []string{"tcp: address is empty"}},
		{name: "bad env value", env: map[string]string{"DISTCHAT_LIMITS_MAX_INFLIGHT": "lots"},
			want: []string{`environment DISTCHAT_LIMITS_MAX_INFLIGHT="lots"`}},
		{name: "bad enums and limits", yaml: "storage: bolt\nlog_format: xml\nlimits:\n  max_inflight: 0\n  receive_maximum: 70000\ndurability: disk\n",
			want: []string{`storage: "bolt"`, `log_format: "xml"`, "limits.max_inflight: 0 must be positive", "receive_maximum: 70000", `durability: "disk" is not one of process, machine`}},
		{name: "badger is not built in", yaml: "storage: badger\n",
			want: []string{`storage: "badger" is not built into this broker; use pebble`}},
		{name: "limits over Mochi's integer ranges", yaml: "limits:\n  max_inflight: 70000\n  max_client_writes_pending: 3000000000\n",
			want: []string{"limits.max_inflight: 70000 is over Mochi's limit of 65535", "limits.max_client_writes_pending: 3000000000 is over Mochi's limit of 2147483647"}},
		{name: "connection limits", yaml: "limits:\n  connect_timeout: 0s\n  max_connections: -1\n  max_connections_per_ip: -5\n",
			want: []string{"limits.connect_timeout: 0s must be a positive duration such as 10s", "limits.max_connections: -1 cannot be negative (0 means unlimited)",
				"limits.max_connections_per_ip: -5 cannot be negative (0 means unlimited)"}},
		{name: "room log bounds", yaml: "limits:\n  max_packet_size: 4096\nroom_log:\n  max_payload: 4096\n  max_conversations: -1\n  max_pending_sync_bytes: 100\n",
			want: []string{"room_log: max_conversations and max_conversations_per_user cannot be negative", "room_log.max_pending_sync_bytes: 100 must be at least two pages",
				"limits.max_packet_size: 4096 must be over 4096"}},
		{name: "unknown key does not hide other problems", yaml: "listen: all\nlog_format: xml\n", args: []string{"-tcp", "localhost"},
			want: []string{"line 1: unknown key listen", `log_format: "xml"`, `tcp: "localhost" is not host:port`}},
		{name: "bad YAML type does not hide other problems", yaml: "limits:\n  max_inflight: lots\nstorage: badger\n",
			want: []string{"line 2: cannot unmarshal", `storage: "badger"`}},
		{name: "bad env value does not hide other problems", env: map[string]string{"DISTCHAT_LIMITS_WRITE_TIMEOUT": "soon"}, args: []string{"-tcp", "localhost"},
			want: []string{`environment DISTCHAT_LIMITS_WRITE_TIMEOUT="soon"`, `tcp: "localhost" is not host:port`}},
		{name: "duplicate user", yaml: "auth:\n  users:\n  - {name: alice, password_hash: '" + h + "'}\n  - {name: alice, password_hash: '" + h + "'}\n",
			want: []string{`auth.users[1] "alice": duplicate user`}},
		{name: "plain password and bad names", yaml: "auth:\n  users:\n  - {name: 'bad/name', password_hash: '" + h + "'}\n  - {name: bob, password_hash: bob-pw, rooms: ['#']}\n",
			want: []string{`auth.users[0] "bad/name"`, `auth.users[1] "bob": password_hash is not a bcrypt hash`, `auth.users[1] "bob": rooms:`}},
		{name: "cluster without data dir or room log", yaml: "room_log:\n  enabled: false\ncluster:\n  node: b1\n  routes: [nats://b2:6222]\n",
			want: []string{"cluster: needs -data DIR", "cluster: needs the room log on"}},
		{name: "cluster names, routes and replicas", yaml: "data_dir: /tmp/x\ncluster:\n  node: 'b 1'\n  name: ''\n  listen: nowhere\n  routes: [http://b2:6222, 'nats://b3', 'nats://b4:0']\n  replicas: 2\n",
			want: []string{`cluster.node: "b 1"`, `cluster.name: ""`, `cluster.listen: "nowhere" is not host:port`, `needs the scheme nats://`,
				`"nats://b3" has no host:port`, `"nats://b4:0" has an invalid port`, "cluster.replicas: 2 must be 1, 3 or 5"}},
		{name: "cluster of three without routes", yaml: "data_dir: /tmp/x\ncluster:\n  node: b1\n",
			want: []string{"cluster.routes: empty with 3 replicas"}},
		{name: "missing users file", args: []string{"-tcp", "127.0.0.1:0"}, env: map[string]string{"DISTCHAT_AUTH_USERS_FILE": "/nonexistent/users.yaml"},
			want: []string{"users file: read config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.yaml != "" {
				args = append([]string{"-config", writeFile(t, "b.yaml", tc.yaml)}, args...)
			}
			_, err := loadBroker(t, args...)
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// A cluster section from YAML and the environment; without one the
// broker is not in cluster mode.
func TestClusterSection(t *testing.T) {
	if c := config.DefaultBroker().Cluster; c.Enabled() || c.Replicas != 3 || c.Name != "distchat" {
		t.Fatalf("default cluster section %+v, want off with 3 replicas named distchat", c)
	}
	file := writeFile(t, "b.yaml", "data_dir: /tmp/x\ncluster:\n  node: b1\n  listen: 0.0.0.0:6222\n  routes: [nats://b1:6222, nats://b2:6222]\n  replicas: 3\n  name: chat\n")
	t.Setenv("DISTCHAT_CLUSTER_ROUTES", "nats://b2:6222,nats://b3:6222")
	cfg, err := loadBroker(t, "-config", file)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if !c.Enabled() || c.Node != "b1" || c.Name != "chat" || strings.Join(c.Routes, ",") != "nats://b2:6222,nats://b3:6222" {
		t.Fatalf("cluster section %+v", c)
	}
}

func TestUsersFile(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := writeFile(t, "users.yaml", "users:\n  - {name: alice, password_hash: '"+string(hash)+"', rooms: [lobby, dev]}\n  - {name: ops, password_hash: '"+string(hash)+"', all_rooms: true}\n")
	t.Setenv("DISTCHAT_AUTH_USERS_FILE", users)
	t.Setenv("DISTCHAT_AUTH_ANONYMOUS", "true")
	cfg, err := loadBroker(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Open() || len(cfg.Auth.Users) != 2 || !cfg.Auth.Anonymous || cfg.Auth.Users[1].Name != "ops" || !cfg.Auth.Users[1].AllRooms ||
		!reflect.DeepEqual(cfg.Auth.Users[0].Rooms, []string{"lobby", "dev"}) {
		t.Errorf("auth = %+v", cfg.Auth)
	}
	// Validate again (New does) must not load the file twice.
	if err := cfg.Validate(); err != nil || len(cfg.Auth.Users) != 2 {
		t.Errorf("second Validate: %v, %d users", err, len(cfg.Auth.Users))
	}
}

type listConf struct {
	Rooms []string `yaml:"rooms"`
}

func (*listConf) Validate() error { return nil }

// A repeatable list flag: the first use replaces what the file or environment
// gave; later uses (and commas) add.
func TestListFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{"file only", "", nil, []string{"lobby"}},
		{"env replaces file", "dev, ops", nil, []string{"dev", "ops"}},
		{"flags replace env", "dev", []string{"-room", "a", "-room", "b,c"}, []string{"a", "b", "c"}},
		{"empty items dropped", "", []string{"-room", ",a,,b,"}, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("DISTCHAT_ROOMS", tc.env)
			}
			var cfg listConf
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			config.ListVar(fs, &cfg.Rooms, "room", "")
			args := append([]string{"-config", writeFile(t, "l.yaml", "rooms: [lobby]\n")}, tc.args...)
			if err := config.Load(fs, args, &cfg, listConf{}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Rooms, tc.want) {
				t.Errorf("rooms = %q, want %q", cfg.Rooms, tc.want)
			}
		})
	}
}

func TestHelpAndBadFlag(t *testing.T) {
	if _, err := loadBroker(t, "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	if _, err := loadBroker(t, "-nope"); err == nil || !strings.Contains(err.Error(), "-nope") {
		t.Errorf("-nope: %v", err)
	}
}

func TestValidateAddr(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		optional bool
		ok       bool
	}{
		{"127.0.0.1:1883", false, true},
		{"0.0.0.0:0", false, true},
		{":1883", false, true},
		{"[::1]:1883", false, true},
		{"broker:1883", false, true},
		{"", true, true},
		{"", false, false},
		{"1883", false, false},
		{"host:port", false, false},
		{"127.0.0.1:-1", false, false},
		{"bad host:1", false, false},
	} {
		if err := config.ValidateAddr(tc.addr, tc.optional); (err == nil) != tc.ok {
			t.Errorf("ValidateAddr(%q, %v) = %v, want ok=%v", tc.addr, tc.optional, err, tc.ok)
		}
	}
}

func TestNodeDefaultsAndProblems(t *testing.T) {
	n := config.DefaultNode()
	n.Nick = "alice"
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.User != "alice" || n.ClientID != "" {
		t.Errorf("derived user %q, client id %q", n.User, n.ClientID)
	}
	bad := config.DefaultNode()
	bad.Broker = config.Brokers{"localhost:1883"}
	bad.Rooms = []string{"a/b"}
	bad.Window = 5000
	bad.Password, bad.PasswordFile = "x", "y"
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"broker:", "nick: required", "rooms:", "window: 5000", "password and password_file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// The shipped example files are valid, turn users and ACLs on, and the demo
// passwords documented in them (name + "-pw") are the ones hashed.
func TestExamples(t *testing.T) {
	t.Setenv("DISTCHAT_AUTH_USERS_FILE", filepath.Join("examples", "users.yaml"))
	cfg, err := loadBroker(t, "-config", filepath.Join("examples", "broker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Open() || !cfg.Auth.Anonymous || cfg.TCP != "0.0.0.0:1883" || cfg.HTTP != "0.0.0.0:8080" || cfg.DataDir != "/data" {
		t.Errorf("example broker config: %+v", cfg)
	}
	names := map[string]bool{}
	for _, u := range cfg.Auth.Users {
		names[u.Name] = true
		if err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(u.Name+"-pw")); err != nil {
			t.Errorf("%s: the documented demo password does not match: %v", u.Name, err)
		}
	}
	for _, n := range []string{"alice", "bob", "carol", "dave", "loadgen"} {
		if !names[n] {
			t.Errorf("example users lack %s", n)
		}
	}
}

// The node example loads, validates, and states the real defaults: apart
// from what a person must choose (nick, rooms), every value in it is
// DefaultNode's, so the file cannot drift from the code.
func TestNodeExample(t *testing.T) {
	cfg := config.DefaultNode()
	fs := flag.NewFlagSet("chatnode", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := config.Load(fs, []string{"-config", filepath.Join("examples", "node.yaml")}, &cfg, config.DefaultNode()); err != nil {
		t.Fatal(err)
	}
	want := config.DefaultNode()
	want.Nick, want.Rooms = "alice", []string{"lobby"}
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("examples/node.yaml gives\n%+v\nwant the defaults\n%+v", cfg, want)
	}
}
