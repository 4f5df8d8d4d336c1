package session

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/jsonlog"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// The "received" lines a node writes with its batched log (jsonlog.Fixed)
// are those logrus writes for the same deliveries, rooms and DMs,
// duplicates or not; only the times differ.
func TestReceivedLogFixedEqualsLogrus(t *testing.T) {
	newLog := func(out interface{ Write([]byte) (int, error) }) *logrus.Entry {
		l := logrus.New()
		l.SetFormatter(&jsonlog.Formatter{TimeNSKey: nodelog.FieldTSNS})
		l.SetOutput(out)
		return l.WithFields(logrus.Fields{nodelog.FieldNode: "n0", nodelog.FieldRun: "x"})
	}
	var batched lockedBuffer
	w := jsonlog.NewWriter(&batched, time.Hour)
	fixed := newReceivedLog(newLog(w))
	if fixed.room == nil || fixed.dm == nil {
		t.Fatal("a batched JSON log does not take fixed lines")
	}
	var plain bytes.Buffer
	viaLogrus := newReceivedLog(newLog(&plain))
	if viaLogrus.room != nil {
		t.Fatal("an unbatched output takes fixed lines")
	}
	env := wire.Envelope{V: wire.Version, ID: "n3-dn948oi7tqgt-1f", From: "n3", Room: "lobby", Boot: 1796099798378191421,
		Seq: 31, RoomSeq: 307, SentNS: 1796099798404460771}
	dm := env
	dm.Room, dm.To = "", "n0"
	for _, m := range []struct {
		m   pendingMsg
		dup bool
	}{
		{pendingMsg{env: env, via: nodelog.ViaLive, recvNS: 1796099798405713501, bytes: 301}, false},
		{pendingMsg{env: env, via: nodelog.ViaLive, recvNS: 1796099798405713501, bytes: 301}, true},
		{pendingMsg{env: dm, via: nodelog.ViaHistory, recvNS: 1796099798400000000, bytes: 9}, false},
	} {
		fixed.write(m.m, m.dup)
		viaLogrus.write(m.m, m.dup)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	times := regexp.MustCompile(`"time":"[^"]*"|"ts_ns":\d+`)
	got, want := times.ReplaceAllString(batched.String(), "T"), times.ReplaceAllString(plain.String(), "T")
	if got != want || bytes.Count(plain.Bytes(), []byte("\n")) != 3 {
		t.Fatalf("fixed lines\n%s\nlogrus lines\n%s", got, want)
	}
}
