// Package docscheck holds the checks that keep the documentation usable by
// a newcomer: README.md short, with the two set-up commands near its top
// and the course-template sections; every docs/*.md page a reference in the
// present tense, with no run-to-run narrative (measured figures live in the
// generated results/, which docs/benchmarks.md says how to produce). The
// checks run as tests (go test ./compose/docscheck/), so make test keeps
// them true.
package docscheck
