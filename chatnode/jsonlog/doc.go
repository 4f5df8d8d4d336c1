// Package jsonlog formats logrus entries as JSON lines byte for byte like
// logrus.JSONFormatter, without its per-entry map and reflection: chat nodes
// log one line per delivered message, and encoding/json on a map was a large
// share of a node's CPU. Keys are sorted and values encoded exactly as
// encoding/json does (HTML-safe escaping included), so readers of the log
// see no difference. Values of types it does not know go through
// encoding/json one by one.
//
// For the one line a node writes per delivery, Fixed goes further: it
// writes lines of a fixed shape straight to the logger's output, without
// logrus's per-line entry and map copies, in the bytes Formatter writes.
package jsonlog
