// Package conformance holds the MQTT conformance tests (make test-mqtt): raw
// MQTT 3.1.1 and 5 packets (broker/internal/rawmqtt) drive a broker through
// the specification's normative statements that a chat relies on, sessions,
// the QoS 1 flow, retained messages, Wills, subscription options and
// properties, and each test names the statements it checks. Every test runs
// against distchat's broker (in process, open mode) and against a real
// Mosquitto where the binary is installed, so docs/broker.md's table can
// show the two side by side; where one of them is known to differ, the test
// says so and checks that it still does, so the table cannot go stale.
package conformance
