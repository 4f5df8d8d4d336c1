// Package analysis turns the JSON-lines logs of distchat chat nodes into
// latency, loss and throughput figures: summary.json, CSV files, a Markdown
// report and PNG plots, one scenario per run label, side by side.
//
// It reads each input twice. The first pass, cheap and parallel, reads only
// the lines that describe a run: memberships, fault windows and send times.
// The second merges each scenario's files by time stamp, so that a
// message's "sent" line and its deliveries come close together and the
// message is forgotten once every node that should receive it has: memory
// holds the messages in flight, not the run. Latencies go into histograms
// for the same reason.
package analysis
