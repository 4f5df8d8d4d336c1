// Package benchcompare measures the distchat broker side by side with
// Mosquitto and bare Mochi under the same loads, so the project's
// performance claims rest on one command someone can rerun (make
// bench-compare) rather than on numbers measured one way for one broker.
//
// Every broker is a child process started fresh for each load (each ramp
// step), so the kernel's accounting of its CPU time and peak RSS belongs to
// that load alone. The loads and the report files are described in the
// command's usage (usageHead).
package benchcompare
