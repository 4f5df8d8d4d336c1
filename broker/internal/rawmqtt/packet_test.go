package rawmqtt

import (
	"errors"
	"reflect"
	"testing"
)

func ptr(s string) *string { return &s }

// roundTripCases are packets a client sends, in both versions.
func roundTripCases() []Packet {
	var props Props
	props.SetInt(PropMessageExpiry, 60)
	props.SetStr(PropContentType, "text/plain")
	props.SetBin(PropCorrelationData, []byte{0, 1, 2})
	props.SetInt(PropPayloadFormat, 1)
	props.User = []UserProperty{{"a", "1"}, {"a", "2"}, {"b", ""}}
	var willProps Props
	willProps.SetInt(PropWillDelay, 5)
	return []Packet{
		{Type: CONNECT, Connect: &Connect{ClientID: "c1", Clean: true, KeepAlive: 30, Username: ptr("alice"), Password: []byte("pw"),
			Will: &Will{Topic: "w/t", Payload: []byte("gone"), QoS: 1, Retain: true, Props: willProps}}},
		{Type: CONNECT, Connect: &Connect{ClientID: "", KeepAlive: 0}},
		{Type: PUBLISH, QoS: 1, ID: 7, Dup: true, Retain: true, Topic: "a/b", Payload: []byte("x"), Props: props},
		{Type: PUBLISH, Topic: "a", Payload: []byte{}},
		{Type: PUBACK, ID: 9},
		{Type: PUBREL, ID: 9},
		{Type: SUBSCRIBE, ID: 3, Subs: []Subscription{{Filter: "a/#", QoS: 1}, {Filter: "b", QoS: 2}}},
		{Type: UNSUBSCRIBE, ID: 4, Filters: []string{"a/#", "c"}},
		{Type: PINGREQ},
	}
}

// Every packet a client sends decodes back to itself, in 3.1.1 and 5.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, v := range []byte{V311, V5} {
		for _, p := range roundTripCases() {
			if v == V311 {
				p.Props = Props{}
				if p.Connect != nil && p.Connect.Will != nil {
					p.Connect.Will.Props = Props{}
				}
			}
			if p.Connect != nil {
				p.Connect.Version = v
			}
			b, err := Encode(p, v)
			if err != nil {
				t.Fatalf("v%d %s: encode: %v", v, TypeName(p.Type), err)
			}
			got, n, err := Decode(b, v)
			if err != nil || n != len(b) {
				t.Fatalf("v%d %s: decode %x: %v (took %d of %d)", v, TypeName(p.Type), b, err, n, len(b))
			}
			if !reflect.DeepEqual(normal(got), normal(p)) {
				t.Errorf("v%d %s: round trip\n got %+v\nwant %+v", v, TypeName(p.Type), got, p)
			}
		}
	}
}

// MQTT 5 subscription options survive the round trip bit for bit.
func TestSubscriptionOptions(t *testing.T) {
	p := Packet{Type: SUBSCRIBE, ID: 1, Subs: []Subscription{{Filter: "x", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}
	b, err := Encode(p, V5)
	if err != nil {
		t.Fatal(err)
	}
	if opts := b[len(b)-1]; opts != 0x2d {
		t.Errorf("options byte %#x, want 0x2d", opts)
	}
	got, _, err := Decode(b, V5)
	if err != nil || !reflect.DeepEqual(got.Subs, p.Subs) {
		t.Errorf("decoded %+v, %v", got.Subs, err)
	}
}

// Broker packets decode from their bytes as the specification lays them out.
func TestDecodeBrokerPackets(t *testing.T) {
	cases := []struct {
		name string
		v    byte
		in   []byte
		want Packet
	}{
		{"connack 3.1.1 session present", V311, []byte{0x20, 2, 1, 0}, Packet{Type: CONNACK, SessionPresent: true}},
		{"connack 5 keep alive", V5, []byte{0x20, 6, 0, 0, 3, 0x13, 0, 10},
			Packet{Type: CONNACK, Props: Props{Ints: map[byte]uint32{PropServerKeepAlive: 10}}}},
		{"puback 5 short form", V5, []byte{0x40, 2, 0, 5}, Packet{Type: PUBACK, ID: 5}},
		{"puback 5 reason", V5, []byte{0x40, 3, 0, 5, 0x97}, Packet{Type: PUBACK, ID: 5, Reason: 0x97}},
		{"suback 3.1.1", V311, []byte{0x90, 4, 0, 1, 1, 0x80}, Packet{Type: SUBACK, ID: 1, Reasons: []byte{1, 0x80}}},
		{"suback 5", V5, []byte{0x90, 4, 0, 1, 0, 0}, Packet{Type: SUBACK, ID: 1, Reasons: []byte{0}}},
		{"disconnect 5", V5, []byte{0xe0, 1, 0x8d}, Packet{Type: DISCONNECT, Reason: 0x8d}},
		{"pingresp", V311, []byte{0xd0, 0}, Packet{Type: PINGRESP}},
	}
	for _, c := range cases {
		got, n, err := Decode(c.in, c.v)
		if err != nil || n != len(c.in) {
			t.Errorf("%s: %v (took %d of %d)", c.name, err, n, len(c.in))
			continue
		}
		if !reflect.DeepEqual(normal(got), normal(c.want)) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// Malformed packets are refused with ErrMalformed, never a panic.
func TestDecodeRefusesMalformed(t *testing.T) {
	cases := map[string][]byte{
		"short":                  {0x30},
		"qos 3":                  {0x36, 3, 0, 1, 'a'},
		"publish id 0":           {0x32, 5, 0, 1, 'a', 0, 0},
		"pubrel flags":           {0x60, 2, 0, 1},
		"body short":             {0x40, 5, 0, 1},
		"unknown property":       {0x40, 5, 0, 1, 0, 2, 0x7f},
		"duplicate property":     {0x30, 13, 0, 1, 'a', 8, 0x03, 0, 1, 'x', 0x03, 0, 1, 'y'},
		"varint over four bytes": {0x30, 0xff, 0xff, 0xff, 0xff, 0x01},
		"string not utf-8":       {0x30, 4, 0, 2, 0xc3, 0x28},
		"subscribe no filter":    {0x82, 2, 0, 1},
		"trailing bytes":         {0xd0, 1, 0},
	}
	for name, in := range cases {
		if _, _, err := Decode(in, V5); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// normal makes empty and nil slices and maps compare equal.
func normal(p Packet) Packet {
	if len(p.Payload) == 0 {
		p.Payload = nil
	}
	p.Props = normalProps(p.Props)
	if p.Connect != nil && p.Connect.Will != nil {
		w := *p.Connect.Will
		w.Props = normalProps(w.Props)
		c := *p.Connect
		c.Will = &w
		p.Connect = &c
	}
	return p
}

func normalProps(p Props) Props {
	if len(p.Ints) == 0 {
		p.Ints = nil
	}
	if len(p.Strs) == 0 {
		p.Strs = nil
	}
	if len(p.Bins) == 0 {
		p.Bins = nil
	}
	return p
}
