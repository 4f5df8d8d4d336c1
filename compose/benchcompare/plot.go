package benchcompare

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// brokerColors colour the brokers in AllBrokers order, one colour each.
var brokerColors = []color.Color{
	color.RGBA{127, 127, 127, 255}, color.RGBA{31, 119, 180, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{255, 127, 14, 255}, color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255},
}

const plotDPI = 96

// panels are the rows of compare.png, each headed by its title.
var panels = []column{
	{head: "p50 latency (ms)", get: func(f Figures) float64 { return f.P50MS }},
	{head: "p99 latency (ms)", get: func(f Figures) float64 { return f.P99MS }},
	{head: "msg/s", get: func(f Figures) float64 { return f.MsgPerS }},
}

// writePlot draws compare.png: a column per load, rows p50, p99 and msg/s
// (ramp: the zero-loss capacity), one coloured bar per broker.
func (r Report) writePlot(path string) error {
	if len(r.Loads) == 0 {
		return errors.New("plot: no loads")
	}
	w := vg.Length(300*len(r.Loads)) * vg.Inch / plotDPI
	h := vg.Length(260*len(panels)) * vg.Inch / plotDPI
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(panels), Cols: len(r.Loads), PadX: vg.Points(10), PadY: vg.Points(10),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	for col, load := range r.Loads {
		for row, pn := range panels {
			title := load + ": " + pn.head
			if load == "ramp" && pn.head == "msg/s" {
				title = "ramp: zero-loss capacity (msg/s)"
			}
			p, err := r.barPlot(load, title, pn.get)
			if err != nil {
				return err
			}
			p.Draw(tiles.At(dc, col, row))
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(bw)
	if err = errors.Join(err, bw.Flush(), f.Close()); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// barPlot is one panel: a bar per broker that ran the load without failing.
func (r Report) barPlot(load, title string, get func(Figures) float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	var names []string
	for _, broker := range r.Brokers {
		res, ok := r.find(load, broker)
		if !ok || res.Error != "" {
			continue
		}
		bars, err := plotter.NewBarChart(plotter.Values{get(res.Figures)}, vg.Points(22))
		if err != nil {
			return nil, fmt.Errorf("plot %s %s: %w", load, broker, err)
		}
		bars.XMin = float64(len(names))
		bars.Color = brokerColor(broker)
		bars.LineStyle.Width = 0
		p.Add(bars)
		names = append(names, broker)
	}
	if len(names) == 0 {
		p.Title.Text = title + " (no broker finished this load)"
		return p, nil
	}
	p.NominalX(names...)
	p.X.Tick.Label.Font.Size = vg.Points(9)
	return p, nil
}

func brokerColor(name string) color.Color {
	if i := slices.Index(AllBrokers, name); i >= 0 {
		return brokerColors[i%len(brokerColors)]
	}
	return color.Black
}
