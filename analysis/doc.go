// Package analysis turns the JSON-lines logs of distchat chat nodes into
// latency, loss and throughput figures: summary.json, CSV files, a Markdown
// report and PNG plots, one scenario per run label, side by side.
//
// It reads each input twice. The first pass, cheap and parallel over the
// files, reads only the lines that describe a run: who was a member of which
// room when, the fault windows, and the send times that bound the measured
// window; it skips "received" lines unparsed. The second pass parses every
// line and merges the files of each scenario (run label) by time stamp, one
// scenario's files at a time, so that a message's "sent" line
// and its deliveries are read close together: a message is forgotten as
// soon as every node that should receive it has, and memory holds the
// messages in flight (and the lost ones), not the run. Latencies go into
// histograms (see hist) rather than lists for the same reason. Standard
// input is spooled to a temporary file so that it can be read twice too.
package analysis
