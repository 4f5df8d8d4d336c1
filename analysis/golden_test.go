package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden compares every output of each input set in testdata, and the
// data series behind its plots, with testdata/golden/<set>: basic is one
// hand-made scenario, compare adds a second scenario for the comparison
// plots. After a deliberate change, rewrite them with
// go test ./analysis -run Golden -update and review the diff.
func TestGolden(t *testing.T) {
	for _, set := range []string{"basic", "compare"} {
		t.Run(set, func(t *testing.T) {
			got := goldenOutputs(t, filepath.Join("testdata", set))
			dir := filepath.Join("testdata", "golden", set)
			if *update {
				if err := os.MkdirAll(dir, 0o777); err != nil {
					t.Fatal(err)
				}
				for name, b := range got {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o666); err != nil {
						t.Fatal(err)
					}
				}
			}
			for name, b := range got {
				t.Run(name, func(t *testing.T) {
					want, err := os.ReadFile(filepath.Join(dir, name))
					if err != nil {
						t.Fatalf("%v (run with -update to create it)", err)
					}
					if !bytes.Equal(b, want) {
						t.Errorf("%s differs from %s (run with -update after checking):\n%s", name, filepath.Join(dir, name), firstDiff(b, want))
					}
				})
			}
		})
	}
}

// goldenOutputs analyses one input set and returns its output files and
// plot data by file name.
func goldenOutputs(t *testing.T, input string) map[string][]byte {
	t.Helper()
	out := t.TempDir()
	sum, _, err := analyse(context.Background(), Options{Inputs: []string{input}, Out: out}, strings.NewReader(""))
	if err != nil {
		t.Fatalf("analyse: %v", err)
	}
	got := map[string][]byte{}
	for _, f := range []string{"summary.json", "summary.csv", "messages.csv", "report.md"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got[f] = b
	}
	asJSON := func(v any) []byte {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return append(pointsOnOneLine.ReplaceAllFunc(b, func(m []byte) []byte {
			return spaces.ReplaceAll(m, []byte(" "))
		}), '\n')
	}
	for _, s := range sum.Scenarios {
		got["plots_"+s.Name+".json"] = asJSON(scenarioPlotData(s))
	}
	if len(sum.Scenarios) > 1 {
		got["plots_compare.json"] = asJSON(comparePlotData(sum.Scenarios))
	}
	return got
}

// pointsOnOneLine matches an indented JSON array of numbers (a point or a
// histogram bin), written on one line in the golden files.
var (
	pointsOnOneLine = regexp.MustCompile(`\[\s+[-0-9.e+]+(,\s+[-0-9.e+]+)*\s+\]`)
	spaces          = regexp.MustCompile(`\s+`)
)

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(int64(i+1)) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(same lines, different bytes)"
}
