package docscheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// MaxReadmeLines bounds README.md: an overview that fits in a few screens,
// with the full tables and figures one link away.
const MaxReadmeLines = 200

// SetupWithin is how many of README's first lines must hold the set-up
// commands, so a newcomer finds them without scrolling.
const SetupWithin = 40

// SetupCommands are the commands that set distchat up: the main job (the
// evaluation, then the demo) and the tests.
var SetupCommands = []string{"make all", "make test"}

// ReadmeSections are the course template's `##` sections README keeps.
var ReadmeSections = []string{
	"About the project", "Implemented components", "Architecture", "Processes", "Communication", "Naming",
	"Synchronization", "Consistency and replication", "Fault tolerance", "Built with", "Getting started",
	"Results", "Acknowledgments",
}

// ForbiddenPhrases mark a page as a lab notebook rather than a reference:
// figures of one run and the history of how the code got here. Matched
// case-insensitively, as whole words, also where a line break splits one.
var ForbiddenPhrases = []string{
	"in this run", "this run's", "earlier run", "last run", "the run before", "previous run", "previously",
}

var forbidden = regexp.MustCompile(`(?i)\b(` + strings.Join(phrasePatterns(ForbiddenPhrases), "|") + `)\b`)

// phrasePatterns quotes each phrase, any run of white space (a line break
// among them) matching the space between two words.
func phrasePatterns(phrases []string) []string {
	out := make([]string, len(phrases))
	for i, p := range phrases {
		out[i] = strings.Join(strings.Fields(regexp.QuoteMeta(p)), `\s+`)
	}
	return out
}

// Problem is one broken rule, with the line it is on (0: the whole file).
type Problem struct {
	Line int
	Text string
}

// String is the problem as a test reports it.
func (p Problem) String() string {
	if p.Line == 0 {
		return p.Text
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Text)
}

// CheckReadme reports what in README's text breaks its rules: too long,
// a set-up command missing from its first lines, a template section gone.
func CheckReadme(text string) []Problem {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var probs []Problem
	if len(lines) > MaxReadmeLines {
		probs = append(probs, Problem{Text: fmt.Sprintf("%d lines, more than %d: link to a page instead", len(lines), MaxReadmeLines)})
	}
	top := lines[:min(len(lines), SetupWithin)]
	for _, cmd := range SetupCommands {
		if !hasCommand(top, cmd) {
			probs = append(probs, Problem{Text: fmt.Sprintf("the set-up command %q is not in the first %d lines", cmd, SetupWithin)})
		}
	}
	for _, sec := range ReadmeSections {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.TrimRight(l, " ") == "## "+sec }) {
			probs = append(probs, Problem{Text: fmt.Sprintf("the section %q is missing", "## "+sec)})
		}
	}
	return probs
}

// hasCommand reports whether a line runs cmd: it starts the line (as in a
// shell block) or stands quoted in the text, and is not a longer target
// (make test-mqtt is not make test).
func hasCommand(lines []string, cmd string) bool {
	re := regexp.MustCompile(`(^\s*|` + "`" + `)` + regexp.QuoteMeta(cmd) + `(\s|` + "`" + `|$)`)
	return slices.ContainsFunc(lines, re.MatchString)
}

// CheckPhrases reports each forbidden phrase in a page, at the line where
// it starts.
func CheckPhrases(text string) []Problem {
	var probs []Problem
	for _, loc := range forbidden.FindAllStringIndex(text, -1) {
		m := strings.Join(strings.Fields(text[loc[0]:loc[1]]), " ")
		probs = append(probs, Problem{Line: strings.Count(text[:loc[0]], "\n") + 1,
			Text: fmt.Sprintf("%q: say what the system does and how to measure it; figures live in results/", m)})
	}
	return probs
}
