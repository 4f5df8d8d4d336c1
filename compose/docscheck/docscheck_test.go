package docscheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distchat/distchat/compose/benchcompare"
)

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func report(t *testing.T, name string, probs []Problem) {
	t.Helper()
	for _, p := range probs {
		t.Errorf("%s: %s", name, p)
	}
}

// TestReadme: the repository's README.md keeps its rules, and the markers
// between which make bench-compare writes its summary.
func TestReadme(t *testing.T) {
	text := readFile(t, filepath.Join(repoRoot(t), "README.md"))
	report(t, "README.md", CheckReadme(text))
	report(t, "README.md", CheckPhrases(text))
	if _, err := benchcompare.ReplaceBetweenMarkers(text, "summary"); err != nil {
		t.Errorf("README.md: make bench-compare cannot write its summary: %v", err)
	}
}

// TestDocsPages: no docs/*.md page reads as a lab notebook.
func TestDocsPages(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join(repoRoot(t), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no docs/*.md pages found")
	}
	for _, p := range pages {
		report(t, "docs/"+filepath.Base(p), CheckPhrases(readFile(t, p)))
	}
}

// goodReadme is a README that keeps every rule.
func goodReadme() string {
	var b strings.Builder
	b.WriteString("# distchat\n\n## About the project\n\n```sh\nmake all     # everything\nmake test    # the tests\n```\n")
	for _, sec := range ReadmeSections[1:] {
		b.WriteString("\n## " + sec + "\n\ntext\n")
	}
	return b.String()
}

func TestCheckReadme(t *testing.T) {
	long := goodReadme() + strings.Repeat("more\n", MaxReadmeLines)
	late := strings.Replace(strings.Replace(goodReadme(), "make all", "make build", 1), "## Results\n",
		strings.Repeat("\n", SetupWithin)+"## Results\n\n`make all` runs it\n", 1)
	tests := []struct {
		name, text string
		want       []string // a substring of each problem, in order
	}{
		{"good", goodReadme(), nil},
		{"quoted in the text", strings.Replace(goodReadme(), "make test    # the tests", "then `make test` for the tests", 1), nil},
		{"too long", long, []string{"more than 200"}},
		{"make all too late", late, []string{`"make all" is not in the first 40`}},
		{"a longer target is not the command", strings.Replace(goodReadme(), "make test ", "make test-mqtt ", 1),
			[]string{`"make test" is not in the first 40`}},
		{"a section gone", strings.Replace(goodReadme(), "## Naming\n", "## Names\n", 1), []string{`"## Naming" is missing`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckReadme(tt.text)
			if len(got) != len(tt.want) {
				t.Fatalf("problems %v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("problem %d = %q, want one containing %q", i, got[i], w)
				}
			}
		})
	}
}

func TestCheckPhrases(t *testing.T) {
	tests := []struct {
		text      string
		wantLines []int
	}{
		{"The broker stores every record.\nIt acknowledges after the store.", nil},
		{"p99 was 69 ms in an Earlier Run.", []int{1}},
		{"fine\nIn this run it queued.\nfine\nIts last run: 4.6 s.", []int{2, 4}},
		{"The node previously kept a timer.", []int{1}},
		{"counted it (none in this run's nolog-kill)", []int{1}},
		{"it met it in the run before", []int{1}},
		{"the lastrun field and a runtime value", nil},         // whole words only
		{"a line\nbroken in its last\n  run: 4.6 s", []int{2}}, // a phrase across a line break
		{"in this run, and in this run again", []int{1, 1}},
	}
	for _, tt := range tests {
		got := CheckPhrases(tt.text)
		var lines []int
		for _, p := range got {
			lines = append(lines, p.Line)
		}
		if !slices.Equal(lines, tt.wantLines) {
			t.Errorf("CheckPhrases(%q) lines %v, want %v", tt.text, lines, tt.wantLines)
		}
	}
}
