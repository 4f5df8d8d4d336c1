package benchcompare

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/distchat/distchat/analysis/percentile"
)

// Figures are one broker's measurements under one load. Latencies are in
// milliseconds; the CPU figures are seconds of CPU per 1,000 deliveries.
type Figures struct {
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	MsgPerS    float64 `json:"msg_per_s"`  // deliveries/s; ramp: the zero-loss capacity
	Loss       int64   `json:"loss"`       // published or expected, never received
	Deliveries int64   `json:"deliveries"` // every receipt over the whole load
	// BrokerCPUS and LoadCPUS are CPU seconds of the broker and of the load
	// generator (the chat nodes, or this process for pairs), also per 1k deliveries.
	BrokerCPUS     float64 `json:"broker_cpu_s"`
	LoadCPUS       float64 `json:"load_cpu_s"`
	BrokerCPUPer1k float64 `json:"broker_cpu_s_per_1k"`
	LoadCPUPer1k   float64 `json:"load_cpu_s_per_1k"`
	BrokerRSSMB    float64 `json:"broker_rss_mb"` // peak resident set size in MiB
	// BrokerSwitchesPerDelivery is the broker's context switches (Usage)
	// per delivery: what raw system calls save (package broker/rawio).
	BrokerSwitchesPerDelivery float64 `json:"broker_switches_per_delivery"`
	GroupCommits
}

// GroupCommits are a durability machine broker's room log fsyncs (its
// /stats): the records one served and what one took, the device's share.
type GroupCommits struct {
	Fsyncs          int64   `json:"fsyncs,omitempty"`
	AppendsPerFsync float64 `json:"appends_per_fsync,omitempty"`
	FsyncMeanMS     float64 `json:"fsync_mean_ms,omitempty"`
}

// latencyFigures sets P50MS, P99MS and MaxMS from unsorted latencies.
func (f *Figures) latencyFigures(lat []time.Duration) {
	s := slices.Sorted(slices.Values(lat))
	f.P50MS = toMS(percentile.Of(s, 500))
	f.P99MS = toMS(percentile.Of(s, 990))
	if len(s) > 0 {
		f.MaxMS = toMS(s[len(s)-1])
	}
}

// usageFigures sets the CPU and memory figures from the broker's and the
// load generator's usage; call it after Deliveries is set.
func (f *Figures) usageFigures(broker Usage, load time.Duration) {
	f.BrokerCPUS = round(broker.CPU.Seconds(), 3)
	f.LoadCPUS = round(load.Seconds(), 3)
	f.BrokerCPUPer1k = perThousand(broker.CPU, f.Deliveries)
	f.LoadCPUPer1k = perThousand(load, f.Deliveries)
	f.BrokerRSSMB = round(float64(broker.MaxRSSKB)/1024, 1)
	if f.Deliveries > 0 {
		f.BrokerSwitchesPerDelivery = round(float64(broker.Switches)/float64(f.Deliveries), 2)
	}
}

// perThousand is CPU seconds per 1,000 deliveries (0 without deliveries).
func perThousand(cpu time.Duration, deliveries int64) float64 {
	if deliveries <= 0 {
		return 0
	}
	return round(cpu.Seconds()*1000/float64(deliveries), 4)
}

func toMS(d time.Duration) float64 { return round(float64(d)/1e6, 3) }

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// Line is the figures as one progress line.
func (f Figures) Line() string {
	return fmt.Sprintf("p50 %.3f ms, p99 %.3f ms, max %.1f ms, %.0f msg/s, loss %d, broker %.4f / load %.4f CPU-s per 1k, broker RSS %.1f MB, broker %.2f context switches per delivery",
		f.P50MS, f.P99MS, f.MaxMS, f.MsgPerS, f.Loss, f.BrokerCPUPer1k, f.LoadCPUPer1k, f.BrokerRSSMB, f.BrokerSwitchesPerDelivery)
}
