package benchcompare

import (
	"testing"
	"time"
)

func TestFiguresAggregation(t *testing.T) {
	var f Figures
	// Unsorted input: latencyFigures sorts a copy.
	lat := []time.Duration{3 * time.Millisecond, 1 * time.Millisecond, 2500 * time.Microsecond, 2 * time.Millisecond}
	f.latencyFigures(lat)
	if f.P50MS != 2 || f.P99MS != 3 || f.MaxMS != 3 {
		t.Errorf("latency figures = p50 %v p99 %v max %v, want 2 3 3", f.P50MS, f.P99MS, f.MaxMS)
	}
	if lat[0] != 3*time.Millisecond {
		t.Errorf("latencyFigures reordered its input: %v", lat)
	}
	f.Deliveries = 4000
	f.usageFigures(Usage{CPU: 2 * time.Second, MaxRSSKB: 10 * 1024, Switches: 6000}, 500*time.Millisecond)
	want := Figures{P50MS: 2, P99MS: 3, MaxMS: 3, Deliveries: 4000, BrokerCPUS: 2, LoadCPUS: 0.5,
		BrokerCPUPer1k: 0.5, LoadCPUPer1k: 0.125, BrokerRSSMB: 10, BrokerSwitchesPerDelivery: 1.5}
	if f != want {
		t.Errorf("figures = %+v, want %+v", f, want)
	}
	var none Figures
	none.usageFigures(Usage{CPU: time.Second, Switches: 10}, time.Second)
	if none.BrokerCPUPer1k != 0 || none.LoadCPUPer1k != 0 || none.BrokerSwitchesPerDelivery != 0 {
		t.Errorf("without deliveries the per-delivery figures are %v / %v / %v, want 0", none.BrokerCPUPer1k, none.LoadCPUPer1k, none.BrokerSwitchesPerDelivery)
	}
}
