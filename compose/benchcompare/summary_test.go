package benchcompare

import (
	"strings"
	"testing"
)

// TestSummaryGolden: the README summary has a row per distchat broker, the
// key ratio of each load, "failed" for a broker that did not run, the loss
// beside a ratio, and the link to the full tables.
func TestSummaryGolden(t *testing.T) {
	r := fixedReport()
	r.Results = append(r.Results,
		Result{Load: "pairs-1", Broker: "cluster", Figures: Figures{MsgPerS: 4000, Loss: 7}},
		Result{Load: "ramp", Broker: "mochi", AtLeast: true, Figures: Figures{MsgPerS: 4800},
			Steps: []RampStep{{TotalRate: 2400, Passed: true}, {TotalRate: 4800, Passed: true}}})
	r.Brokers = append(r.Brokers, "cluster")
	got := r.Summary("results/bench/compare.md")
	checkGolden(t, "summary.golden.md", got)
	if lines := strings.Count(got, "\n"); lines > 12 {
		t.Errorf("summary is %d lines; the README keeps it short", lines)
	}
}

func TestSummaryCell(t *testing.T) {
	r := fixedReport()
	tests := []struct {
		load, broker, want string
	}{
		{"pairs-1", "mochi", "0.88"},            // msg/s 7000 ÷ 8000
		{"pairs-1", "process", "0.62 (loss 2)"}, // a closed loop's loss shows
		{"pairs-1", "machine", "failed"},        // it never listened
		{"ramp", "process", "0.50"},             // capacity 2400 ÷ 4800
		{"ramp", "machine", "0.00"},             // its first step failed: capacity 0
		{"ramp", "mochi", "—"},                  // not run under this load
		{"chat-3x333", "process", "—"},          // no such load
	}
	for _, tt := range tests {
		if got := r.summaryCell(tt.load, tt.broker); got != tt.want {
			t.Errorf("summaryCell(%s, %s) = %q, want %q", tt.load, tt.broker, got, tt.want)
		}
	}
	r.Results = append(r.Results, Result{Load: "chat-3x333", Broker: "mosquitto", Figures: Figures{P99MS: 2}},
		Result{Load: "chat-3x333", Broker: "cluster", Figures: Figures{P99MS: 5000, Loss: 40}})
	if got := r.summaryCell("chat-3x333", "cluster"); got != "2500.00 (loss 40)" {
		t.Errorf("chat load cell = %q, want the p99 ratio with the loss", got)
	}
}
