package ackhold

import "testing"

func TestIsPuback(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want bool
	}{
		{"PUBACK", []byte{0x40, 2, 0, 7}, true},
		{"MQTT 5 PUBACK with a reason code", []byte{0x40, 3, 0, 7, 0x10}, false},
		{"two PUBACKs in one write", []byte{0x40, 2, 0, 7, 0x40, 2, 0, 8}, false},
		{"PINGRESP", []byte{0xd0, 0}, false},
		{"PUBREC", []byte{0x50, 2, 0, 7}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := IsPuback(tt.p); got != tt.want {
			t.Errorf("%s: IsPuback(% x) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}
