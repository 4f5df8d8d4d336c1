package session

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/jsonlog"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// receivedLog writes the "received" line of every delivery and duplicate,
// which a run's analysis counts. Where the logger allows it (what chatnode
// sets up with -log) a jsonlog.Fixed writes it without logrus's per-line
// copies; otherwise logrus does. The bytes are the same either way.
type receivedLog struct {
	log *logrus.Entry
	// room and dm write the lines of room messages and of DMs (their last
	// key differs); nil when the logger needs logrus.
	room, dm *jsonlog.Fixed
	fields   logrus.Fields // reused for every line through logrus (WithFields copies it)
}

// receivedKeys are the keys of a "received" line, in the order write
// passes their values; the last is the room's name or a DM's recipient.
var receivedKeys = []string{nodelog.FieldEvent, nodelog.FieldFrom, nodelog.FieldID, nodelog.FieldBoot, nodelog.FieldSeq, nodelog.FieldRoomSeq,
	nodelog.FieldSentNS, nodelog.FieldRecvNS, nodelog.FieldLatencyUS, nodelog.FieldBytes, nodelog.FieldDuplicate, nodelog.FieldVia}

func newReceivedLog(log *logrus.Entry) *receivedLog {
	r := &receivedLog{log: log, fields: make(logrus.Fields, 16)}
	room, errRoom := jsonlog.NewFixed(log, logrus.InfoLevel, "received", append(slices.Clip(receivedKeys), nodelog.FieldRoom)...)
	dm, errDM := jsonlog.NewFixed(log, logrus.InfoLevel, "received", append(slices.Clip(receivedKeys), nodelog.FieldTo)...)
	if errRoom == nil && errDM == nil { // else ErrNotFixed: through logrus
		r.room, r.dm = room, dm
	}
	return r
}

// write writes m's line.
func (r *receivedLog) write(m pendingMsg, dup bool) {
	fx, last := r.room, m.env.Room
	if m.env.To != "" {
		fx, last = r.dm, m.env.To
	}
	if fx == nil {
		r.viaLogrus(m, dup)
		return
	}
	err := fx.Line(time.Now(), jsonlog.String(nodelog.EventReceived), jsonlog.String(m.env.From), jsonlog.String(m.env.ID),
		jsonlog.Int(m.env.Boot), jsonlog.Uint(m.env.Seq), jsonlog.Uint(m.env.RoomSeq), jsonlog.Int(m.env.SentNS),
		jsonlog.Int(m.recvNS), jsonlog.Int((m.recvNS-m.env.SentNS)/1000), jsonlog.Int(int64(m.bytes)), jsonlog.Bool(dup),
		jsonlog.String(m.via), jsonlog.String(last))
	if err != nil {
		// As logrus does; the batched output reports it again on close.
		fmt.Fprintf(os.Stderr, "Failed to write to log, %v\n", err)
	}
}

// viaLogrus writes m's line through logrus.
func (r *receivedLog) viaLogrus(m pendingMsg, dup bool) {
	f := r.fields
	clear(f)
	f[nodelog.FieldEvent], f[nodelog.FieldFrom], f[nodelog.FieldID] = nodelog.EventReceived, m.env.From, m.env.ID
	f[nodelog.FieldBoot], f[nodelog.FieldSeq], f[nodelog.FieldRoomSeq] = m.env.Boot, m.env.Seq, m.env.RoomSeq
	f[nodelog.FieldSentNS], f[nodelog.FieldRecvNS] = m.env.SentNS, m.recvNS
	f[nodelog.FieldLatencyUS], f[nodelog.FieldBytes] = (m.recvNS-m.env.SentNS)/1000, m.bytes
	f[nodelog.FieldDuplicate], f[nodelog.FieldVia] = dup, m.via
	if m.env.To != "" {
		f[nodelog.FieldTo] = m.env.To
	} else {
		f[nodelog.FieldRoom] = m.env.Room
	}
	r.log.WithFields(f).Info("received")
}
