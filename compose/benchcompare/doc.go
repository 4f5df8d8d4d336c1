// Package benchcompare measures the distchat broker side by side with
// Mosquitto and bare Mochi under the same loads, so the project's
// performance claims rest on one command someone can rerun (make
// bench-compare) rather than on numbers measured one way for one broker.
//
// Every broker runs as a child process started fresh for each load (each
// ramp step), on a free loopback port: its CPU time (user+sys) and peak RSS
// come from the kernel's accounting of that process after it exits, so they
// belong to that load alone. The loads are a closed-loop pair load
// (publisher waits for its subscriber, mqtt-bm-latency style), an open-loop
// chat load of real chatnode bench processes read back through the
// analysis, and a ramp of the chat load up to the rate where p99 passes
// 100 ms or a message is lost. The report is compare.json, compare.md (a
// table per load with the ratio ours ÷ Mosquitto per figure) and
// compare.png.
package benchcompare
