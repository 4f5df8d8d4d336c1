package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/distchat/distchat/config"
)

// brokerExample is the shipped broker configuration.
var brokerExample = filepath.Join("examples", "broker.yaml")

// The broker example names every key of config.Broker (auth.users aside:
// the example's users come from users_file), so an operator finds each one
// there.
func TestBrokerExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(brokerExample)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeOf(config.Broker{}), "") {
		if key == "auth.users" {
			continue
		}
		if !hasKey(doc, strings.Split(key, ".")) {
			t.Errorf("%s lacks the key %s", brokerExample, key)
		}
	}
}

// Every value in the broker example is DefaultBroker's, except what a
// deployment must choose (listener addresses, data directory, who may
// connect): the example cannot drift from the code's defaults.
func TestBrokerExampleStatesDefaults(t *testing.T) {
	got := config.DefaultBroker()
	if err := config.ReadYAML(brokerExample, &got); err != nil {
		t.Fatal(err)
	}
	want := config.DefaultBroker()
	want.TCP, want.HTTP, want.DataDir = "0.0.0.0:1883", "0.0.0.0:8080", "/data"
	want.Auth.UsersFile, want.Auth.Anonymous = "/etc/distchat/users.yaml", true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s gives\n%+v\nwant the defaults\n%+v", brokerExample, got, want)
	}
}

// yamlKeys lists the dotted YAML keys of the leaf fields of struct type t.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			keys = append(keys, yamlKeys(f.Type, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

func hasKey(doc map[string]any, path []string) bool {
	v, ok := doc[path[0]]
	if !ok || len(path) == 1 {
		return ok
	}
	sub, ok := v.(map[string]any)
	return ok && hasKey(sub, path[1:])
}
