package eval

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Main is the eval command; it loads every scenario first, so a typo fails
// before anything starts, and returns the process exit code.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	r := Runner{Cmd: ExecCommander{}, Progress: stderr}
	fs.StringVar(&r.ComposeFile, "compose", "compose/eval.yml", "the evaluation compose `file`")
	fs.StringVar(&r.Project, "project", "distchat-eval", "docker-compose project `name` (kept apart from the demo)")
	fs.StringVar(&r.Results, "results", "results", "`dir`ectory that receives <scenario>/logs/*.log")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: eval [flags] SCENARIO.yaml...

Runs each scenario against compose/eval.yml: a fresh broker and the
scenario's bench nodes (alice, bob, carol by default; nodes: 10 adds dave to
judy), the scenario's faults on schedule (docker kill, docker stop, docker start, docker
network disconnect), then waits for the nodes and tears down. Logs land in
RESULTS/<scenario>/logs; drill.log there records the scenario's comparison
groups and the fault windows.
The images distchat/broker:dev and distchat/chatnode:dev must exist (make images).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "eval: no scenario files given (try compose/scenarios/*.yaml)")
		return 2
	}
	var scenarios []Scenario
	seen := map[string]string{}
	for _, path := range fs.Args() {
		s, err := LoadScenario(path)
		if err != nil {
			fmt.Fprintln(stderr, "eval:", err)
			return 2
		}
		if other, dup := seen[s.Name]; dup {
			fmt.Fprintf(stderr, "eval: %s and %s both name scenario %q\n", other, path, s.Name)
			return 2
		}
		seen[s.Name] = path
		scenarios = append(scenarios, s)
	}
	for i, s := range scenarios {
		fmt.Fprintf(stderr, "eval: scenario %d of %d\n", i+1, len(scenarios))
		if err := r.Run(ctx, s); err != nil {
			fmt.Fprintln(stderr, "eval:", err)
			return 1
		}
	}
	return 0
}
