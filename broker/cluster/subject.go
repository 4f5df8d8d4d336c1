package cluster

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// logPrefix starts every room log subject: logPrefix + "." + token.
const logPrefix = "roomlog"

// subjectOf is conv's subject in the log stream. A conversation key may
// hold any character a room name may ('.', '*', '>', spaces, which NATS
// subjects give meaning to or refuse), so it is one base64url token:
// letters, digits, '-' and '_' only.
func subjectOf(conv string) string {
	return logPrefix + "." + base64.RawURLEncoding.EncodeToString([]byte(conv))
}

// convOf is the conversation key of a log subject.
func convOf(subject string) (string, error) {
	token, ok := strings.CutPrefix(subject, logPrefix+".")
	if !ok || token == "" {
		return "", fmt.Errorf("subject %q is not a room log subject", subject)
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", fmt.Errorf("subject %q: %w", subject, err)
	}
	if base64.RawURLEncoding.EncodeToString(b) != token {
		return "", fmt.Errorf("subject %q: not the canonical encoding of a conversation", subject)
	}
	return string(b), nil
}
