package chatnode

import (
	"errors"
	"fmt"
	"io"
)

// Exit codes of every mode; exitCodesHelp lists them in -h and
// docs/chatnode.md explains them.
const (
	exitOK         = 0 // everything sent was acknowledged (bench: and every expected message arrived)
	exitIncomplete = 1 // messages unacknowledged at exit; bench: also too few received, peers never online, a failed run
	exitUsage      = 2 // bad flags or configuration
	exitNoBroker   = 3 // refused by the broker, or never connected (bench: within -start-timeout; interactive: before its input ended)
)

const exitCodesHelp = `
Exit codes: 0 ok; 1 messages unacknowledged at exit%s; 2 bad flags or configuration;
3 refused by the broker (wrong user or password, not authorized) or never connected%s.
SIGINT/SIGTERM end the node like /quit (same codes).
`

// fail prints an error that ends the node and returns its exit code.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "chatnode: %v\n", err)
	return exitIncomplete
}

// errNotConnected: the node gave up waiting for its first connection.
var errNotConnected = errors.New("not connected")
