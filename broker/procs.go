package broker

// DefaultProcs is how many processors the broker command runs Go code on
// (GOMAXPROCS) unless the environment sets GOMAXPROCS: one, as Mosquitto
// runs on one thread. Mochi hands every delivery from the publisher's
// reading goroutine to the subscriber's writing goroutine, and a chat
// message also passes the room log's hook and the acknowledgement
// flusher: with more than one processor each hand-off can wake a
// sleeping thread (a futex call, and a second thread spinning for work),
// on one it is a run-queue operation. Measured on a 2-core machine
// against the same broker on every processor: less broker CPU per
// delivery on every load of make bench-compare, a faster one-pair round
// trip, chat latencies as low or lower (docs/broker.md). A broker with
// cores of its own and more deliveries a second than one core carries
// (tens of thousands here) sets GOMAXPROCS.
const DefaultProcs = 1
