package cluster

import (
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
)

// natsLogger routes the embedded NATS server's log through the broker's
// logrus logger (JSON lines, component nats), so an operator reads one log.
type natsLogger struct{ log *logrus.Entry }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }

// Errorf logs at WARN what a starting or failing-over cluster expects
// (a peer's route not up yet, a peer gone), at ERROR the rest.
func (l natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "connect to route") || strings.Contains(msg, "route connection") {
		l.log.Warn(msg)
		return
	}
	l.log.Error(msg)
}
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Trace(fmt.Sprintf(format, v...)) }
