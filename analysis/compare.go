package analysis

import (
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// comparison is a set of scenarios drawn in the same plots: one group's
// (such as the evaluation's payload or faults), or all.
type comparison struct {
	Group     string // "" for all scenarios
	Scenarios []ScenarioSummary
}

// comparisons returns one comparison per group of two or more scenarios,
// or, when no scenario names a group, one of all if there are two or more.
func comparisons(ss []ScenarioSummary) []comparison {
	var out []comparison
	at := map[string]int{} // a group's index in out
	for _, s := range ss {
		for _, g := range s.Groups {
			i, ok := at[g]
			if !ok {
				i, at[g] = len(out), len(out)
				out = append(out, comparison{Group: g})
			}
			out[i].Scenarios = append(out[i].Scenarios, s)
		}
	}
	if len(out) == 0 && len(ss) > 1 {
		return []comparison{{Scenarios: ss}}
	}
	return slices.DeleteFunc(out, func(c comparison) bool { return len(c.Scenarios) < 2 })
}

// comparePlots is the data behind the comparison plots, apart from the
// drawing so that golden files can check it.
type comparePlots struct {
	CDFs             []namedCDF  `json:"latency_cdfs"` // per scenario: ms, fraction of deliveries
	Percentiles      []namedBars `json:"percentiles"`  // p50, p90, p99, p99.9 ms, ≥ minLatencyMS
	Labels           []string    `json:"labels"`
	BottomMS         float64     `json:"bottom_ms"` // where the bars rise from
	TopMS            float64     `json:"top_ms"`
	ThroughputMBPerS []namedBars `json:"throughput_mb_per_s"` // ≥ minThroughputMB
}

type namedCDF struct {
	Name   string       `json:"scenario"`
	Points [][2]float64 `json:"points"`
	series int          // the scenario's place in the comparison: its style
}

type namedBars struct {
	Name   string    `json:"scenario"`
	Values []float64 `json:"values"`
}

// minThroughputMB keeps the throughput plot's log axis away from zero.
const minThroughputMB = 0.0001

// comparePlotData computes the comparison plots' series.
func comparePlotData(ss []ScenarioSummary) comparePlots {
	d := comparePlots{Labels: []string{"p50", "p90", "p99", "p99.9"}}
	for i, s := range ss {
		if pts := cdfPoints(s.all, 2000); len(pts) > 0 {
			d.CDFs = append(d.CDFs, namedCDF{Name: s.Name, Points: pts, series: i})
		}
		l := s.LatencyMS
		vals := []float64{l.P50, l.P90, l.P99, l.P999}
		for i, v := range vals {
			vals[i] = math.Max(v, minLatencyMS)
		}
		d.Percentiles = append(d.Percentiles, namedBars{Name: s.Name, Values: vals})
		d.ThroughputMBPerS = append(d.ThroughputMBPerS, namedBars{Name: s.Name,
			Values: []float64{math.Max(s.ThroughputMBPerS, minThroughputMB)}})
	}
	d.BottomMS, d.TopMS = logBarSpan(d.Percentiles, minLatencyMS)
	return d
}

// logBarSpan is the log axis of bars, all at least floor: from the power of
// ten a decade under the smallest (where the bars rise from) to half again
// above the largest.
func logBarSpan(bars []namedBars, floor float64) (bottom, top float64) {
	lo, hi := math.Inf(1), floor
	for _, b := range bars {
		for _, v := range b.Values {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	return math.Pow10(int(math.Floor(math.Log10(math.Min(lo, hi)))) - 1), hi * 1.5
}

// compareKinds are a comparison's plots. The percentiles' y label is short:
// gonum centres a log axis' label box on the arithmetic middle of the
// range, near the top, and a long one squeezes the plot.
var compareKinds = []plotKind[comparePlots]{
	{"compare_cdf", "latency CDF%s", "one-way latency (ms, log scale)", "fraction of deliveries", false, compareCDFPlot},
	{"compare_percentiles", "one-way latency percentiles%s (log scale)", "percentile", "latency (ms)", false, comparePercentilesPlot},
	{"compare_throughput", "delivered throughput%s (log scale)", "", "MB/s", false, compareThroughputPlot},
}

// cdfLines are latency CDF lines, each in its scenario's series style.
func cdfLines(cdfs []namedCDF) ([]*plotter.Line, error) {
	lines := make([]*plotter.Line, 0, len(cdfs))
	for _, c := range cdfs {
		l, err := plotter.NewLine(xysOf(c.Points))
		if err != nil {
			return nil, err
		}
		l.LineStyle = seriesStyle(c.series)
		lines = append(lines, l)
	}
	return lines, nil
}

// addCDFs draws latency CDFs on one log x axis that spans them all, naming
// each in leg (nil: no legend).
func addCDFs(p *plot.Plot, leg *plot.Legend, cdfs []namedCDF) error {
	lines, err := cdfLines(cdfs)
	if err != nil || len(lines) == 0 {
		return err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, c := range cdfs {
		p.Add(lines[i])
		if leg != nil {
			leg.Add(c.Name, lines[i])
		}
		lo, hi = math.Min(lo, c.Points[0][0]), math.Max(hi, c.Points[len(c.Points)-1][0])
	}
	setLogX(p, lo, hi)
	p.Y.Min, p.Y.Max = 0, 1
	return nil
}

// compareCDFPlot overlays the scenarios' latency CDFs.
func compareCDFPlot(p *plot.Plot, d comparePlots, leg *plot.Legend) error {
	p.Y.Min, p.Y.Max = 0, 1
	return addCDFs(p, leg, d.CDFs)
}

// comparePercentilesPlot sets the scenarios' percentiles side by side.
func comparePercentilesPlot(p *plot.Plot, d comparePlots, leg *plot.Legend) error {
	return logBars(p, leg, d.Labels, d.Percentiles, d.BottomMS, d.TopMS)
}

// compareThroughputPlot sets the scenarios' delivered MB/s side by side on
// a log axis (payloads differ a thousandfold).
func compareThroughputPlot(p *plot.Plot, d comparePlots, leg *plot.Legend) error {
	bottom, top := logBarSpan(d.ThroughputMBPerS, minThroughputMB)
	return logBars(p, leg, []string{"delivered MB/s"}, d.ThroughputMBPerS, bottom, top)
}

// logBars sets each scenario's bars side by side in its series colour on a
// log y axis from bottom to top.
func logBars(p *plot.Plot, leg *plot.Legend, groups []string, bars []namedBars, bottom, top float64) error {
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	p.Y.Min, p.Y.Max = bottom, top
	return addBars(p, leg, groups, bars, palette, bottom)
}
