package brokertest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/distchat/distchat/broker"
)

// TestWithoutMochiHang: Mochi's known Close deadlock is set aside, and any
// other close error is kept.
func TestWithoutMochiHang(t *testing.T) {
	hang := fmt.Errorf("%w within 10s; the room log is closed directly", broker.ErrMochiCloseHang)
	other := errors.New("close room log: disk gone")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"the hang alone", hang, nil},
		{"the hang joined", errors.Join(nil, errors.Join(hang, nil), nil), nil},
		{"the hang beside another", errors.Join(errors.Join(hang, other), nil), other},
		{"another alone", other, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withoutMochiHang(tt.err)
			if (got == nil) != (tt.want == nil) || (tt.want != nil && !errors.Is(got, tt.want)) {
				t.Fatalf("withoutMochiHang(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if errors.Is(got, broker.ErrMochiCloseHang) {
				t.Fatalf("withoutMochiHang(%v) still holds the hang", tt.err)
			}
		})
	}
}
