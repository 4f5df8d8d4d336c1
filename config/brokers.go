package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Brokers is the list of MQTT servers a chat node may use, in the order it
// tries them. One URL is the usual single-broker setup; several name the
// brokers of one cluster, and the node moves to the next when the one it
// uses is lost. In YAML `broker:` takes one URL, a comma-separated string
// or a list; the -broker flag and DISTCHAT_BROKER take a comma-separated
// string.
type Brokers []string

// String joins the URLs with commas, as the flag takes them.
func (b Brokers) String() string { return strings.Join(b, ",") }

// UnmarshalYAML accepts a scalar (one URL or a comma-separated list) or a
// sequence of URLs.
func (b *Brokers) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*b = SplitList(n.Value)
		return nil
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		*b = SplitList(strings.Join(items, ","))
		return nil
	}
	return fmt.Errorf("line %d: broker: want a URL or a list of URLs", n.Line)
}

// brokerSchemes are the URL schemes paho dials.
var brokerSchemes = []string{"tcp", "mqtt", "ws", "wss", "ssl", "tls", "mqtts"}

// Validate reports every bad URL and every URL listed twice (a broker
// tried twice in a row only delays the move to a live one).
func (b Brokers) Validate() error {
	if len(b) == 0 {
		return errors.New("broker: at least one URL is required (-broker tcp://HOST:PORT)")
	}
	var errs []error
	seen := map[string]bool{}
	for _, s := range b {
		if seen[s] {
			errs = append(errs, fmt.Errorf("broker: %q is listed twice", s))
		}
		seen[s] = true
		u, err := url.Parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
			continue
		}
		if !slices.Contains(brokerSchemes, u.Scheme) {
			errs = append(errs, fmt.Errorf("broker: %q needs a scheme such as tcp://HOST:PORT", s))
		}
		if u.Host == "" {
			errs = append(errs, fmt.Errorf("broker: %q has no host:port", s))
		}
	}
	return errors.Join(errs...)
}
