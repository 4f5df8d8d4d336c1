package session

import (
	"github.com/distchat/distchat/chatnode/session/statedir"
	"github.com/distchat/distchat/config"
)

// identity is the session's identity: the MQTT client id the state dir's
// device id names, and the state dir's lock.
type identity struct {
	// clientID is this device's MQTT client id (see resolveClientID);
	// clean is true when it is made up for this run only, and the session
	// is then a clean one.
	clientID string
	clean    bool
	// release gives the state dir's lock back (after the last save).
	release func() error
}

// resolveClientID picks the MQTT client id of this device: -client-id when
// given, else "<user>-<device>" with the device id kept in the state dir, so
// that each device of a user has its own persistent session and two devices
// online together never take the id from each other. The broker reserves a
// client id naming a user ("u", "u-…", "…-u") for that user, and the device
// id has no '-', so the id names the user and no one else. A node without a
// state dir has no lasting identity: it gets "<user>-<random>" for this run
// and a clean session (clean true), because a persistent session under an id
// never used again would stay on the broker collecting messages until it
// expires. Catch-up from the room log covers what a clean session does not
// keep while the node is away.
func resolveClientID(cfg config.Node, device string) (id string, clean bool, err error) {
	switch {
	case cfg.ClientID != "":
		return cfg.ClientID, false, nil
	case device != "":
		return cfg.User + "-" + device, false, nil
	}
	run, err := statedir.NewDeviceID()
	if err != nil {
		return "", false, err
	}
	return cfg.User + "-" + run, true, nil
}
