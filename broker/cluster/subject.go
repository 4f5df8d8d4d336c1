package cluster

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// logPrefix starts every room log subject: logPrefix.<partition>.<token>.
const logPrefix = "roomlog"

// subjectOf is conv's subject in partition p's stream. A conversation key
// may hold characters NATS subjects give meaning to or refuse ('.', '*',
// '>', spaces), so it is one base64url token.
func subjectOf(p int, conv string) string {
	return partitionSubjects(p) + base64.RawURLEncoding.EncodeToString([]byte(conv))
}

// partitionSubjects is the subject prefix of partition p's records.
func partitionSubjects(p int) string { return logPrefix + "." + strconv.Itoa(p) + "." }

// convOf is the partition and conversation key of a log subject.
func convOf(subject string) (int, string, error) {
	rest, ok := strings.CutPrefix(subject, logPrefix+".")
	if !ok {
		return 0, "", fmt.Errorf("subject %q is not a room log subject", subject)
	}
	part, token, ok := strings.Cut(rest, ".")
	p, err := strconv.ParseUint(part, 10, 16)
	if !ok || err != nil || token == "" || strconv.FormatUint(p, 10) != part {
		return 0, "", fmt.Errorf("subject %q is not a room log subject", subject)
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", fmt.Errorf("subject %q: %w", subject, err)
	}
	if base64.RawURLEncoding.EncodeToString(b) != token {
		return 0, "", fmt.Errorf("subject %q: not the canonical encoding of a conversation", subject)
	}
	return int(p), string(b), nil
}
