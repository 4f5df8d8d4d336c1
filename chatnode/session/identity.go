package session

import (
	"github.com/distchat/distchat/chatnode/session/statedir"
	"github.com/distchat/distchat/config"
)

// identity is the MQTT client id and the state dir's lock. clean is true
// when the id is made up for this run only (the session is then clean);
// release gives the lock back after the last save.
type identity struct {
	clientID string
	clean    bool
	release  func() error
}

// resolveClientID picks this device's MQTT client id: -client-id when given,
// else "<user>-<device>" with the device id from the state dir, so each
// device of a user has its own persistent session (the broker reserves ids
// naming a user for that user, and a device id has no '-'). Without a state
// dir the id is "<user>-<random>" with a clean session: a persistent one
// under an id never used again would collect messages on the broker until
// it expires; catch-up from the room log covers the time away.
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
