// Package analysis turns the JSON-lines logs of distchat chat nodes into
// latency, loss and throughput figures: summary.json, CSV files, a Markdown
// report and PNG plots, one scenario per run label, side by side.
//
// It reads each input twice: the first pass learns what was sent and who was
// a member of which room when (the "sent", "subscribed", "unsubscribed" and
// "fault" lines); the second matches every "received" line against it. Two
// passes keep memory proportional to the number of messages, not to the size
// of the logs, whichever order the node logs come in. Standard input is
// spooled to a temporary file so that it can be read twice too.
package analysis
