// Package jsonlog is the chat node's log writing: JSON lines byte for
// byte like logrus.JSONFormatter (Formatter), the node's one line per
// delivered message without logrus's per-line map copies (Fixed), and the
// batching of lines into few writes (Writer). A "received" line through
// Fixed and Writer costs about a microsecond and no allocation, where
// logrus's costs tens of microseconds and 58 allocations
// (docs/benchmarks.md, "Mechanisms"; go test -bench LogReceived ./chatnode/).
// Readers of the log see no difference (FuzzFixedEqualsLogrus).
package jsonlog
