package benchcompare

import (
	"fmt"
	"strings"
)

// keyFigureOf is the load's figure in the README's summary: throughput for
// the closed loops, capacity for the ramp, p99 for the open-loop chat loads
// (whose rate is fixed, so their msg/s says nothing).
func keyFigureOf(load string) column {
	switch {
	case load == "ramp":
		return column{head: "capacity", get: func(f Figures) float64 { return f.MsgPerS }}
	case strings.HasPrefix(load, "pairs-"):
		return column{head: "msg/s", get: func(f Figures) float64 { return f.MsgPerS }}
	default:
		return column{head: "p99", get: func(f Figures) float64 { return f.P99MS }}
	}
}

// Summary is what bench-compare puts between the README's markers: each
// distchat broker's key figures as ratios to Mosquitto's and a link to the
// full tables, so the README stays short.
func (r Report) Summary(link string) string {
	var b strings.Builder
	b.WriteString(r.measuredLine())
	b.WriteString("Each cell is the broker's key figure under the load ÷ Mosquitto's: msg/s and capacity, above 1 is better; p99, below 1 is better.\n")
	fmt.Fprintf(&b, "Every figure (latency, loss, CPU and memory per broker), the rounds' spread and what each load is: [%s](%s).\n\n", link, link)
	head := []string{"broker"}
	for _, load := range r.Loads {
		head = append(head, load+" "+keyFigureOf(load).head+" ×")
	}
	writeRow(&b, head...)
	b.WriteString("|---|" + strings.Repeat("---:|", len(r.Loads)) + "\n")
	for _, broker := range r.Brokers {
		if broker == Mosquitto {
			continue
		}
		row := []string{broker}
		for _, load := range r.Loads {
			row = append(row, r.summaryCell(load, broker))
		}
		writeRow(&b, row...)
	}
	return b.String()
}

// summaryCell is broker's key ratio under load, with its loss if any.
func (r Report) summaryCell(load, broker string) string {
	res, ok := r.find(load, broker)
	if !ok {
		return "—"
	}
	if res.Error != "" && len(res.Steps) == 0 {
		return "failed"
	}
	ref, hasRef := r.find(load, Mosquitto)
	if !hasRef || ref.Error != "" {
		return "—"
	}
	key := keyFigureOf(load)
	cell := Ratio(key.get(res.Figures), key.get(ref.Figures))
	if res.Loss > 0 && len(res.Steps) == 0 {
		cell += fmt.Sprintf(" (loss %d)", res.Loss)
	}
	return cell
}
