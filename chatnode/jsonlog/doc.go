// Package jsonlog is the chat node's log writing: JSON lines byte for
// byte like logrus.JSONFormatter (Formatter), the one line a node writes
// per delivered message without logrus's per-line entry and map copies
// (Fixed), and the batching of lines into few writes (Writer).
//
// What it buys: a "received" line through Fixed and Writer costs about a
// microsecond and no allocation, where logrus.JSONFormatter over a
// bufio.Writer costs tens of microseconds and 58 allocations and
// log/slog's JSON handler several microseconds (docs/benchmarks.md,
// "Mechanisms", has the alternating measurement). Keys are sorted and
// values encoded exactly as encoding/json does (HTML-safe escaping
// included), so readers of the log see no difference
// (FuzzFixedEqualsLogrus); values of types it does not know go through
// encoding/json one by one.
//
// How to measure it again:
//
//	go test -run '^$' -bench 'LogReceived' -benchmem ./chatnode/
//
// runs the node's logger ("fixed") beside logrus.JSONFormatter and
// log/slog's JSON handler, each over a buffered file.
package jsonlog
