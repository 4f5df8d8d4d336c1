package session

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/jsonlog"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// BenchmarkReceive is a node's receive path for one live room message: from
// the PUBLISH payload as paho hands it to the handler, through decoding,
// ordering and the "received" log line, to the event, with the node's log
// formatter (jsonlog, batched writer) and with logrus.JSONFormatter. The
// pipeline runs synchronously here (no paho, no goroutines). The journal
// case adds the interactive mode's write of each position
// (RecordJournal); the bench mode's (RecordLog) costs nothing per delivery.
func BenchmarkReceive(b *testing.B) {
	for _, tt := range []struct {
		name   string
		f      logrus.Formatter
		record RecordMode
	}{
		{"jsonlog", &jsonlog.Formatter{}, RecordState},
		{"logrus.JSONFormatter", &logrus.JSONFormatter{}, RecordState},
		{"jsonlog+journal", &jsonlog.Formatter{}, RecordJournal},
	} {
		b.Run(tt.name, func(b *testing.B) { benchReceive(b, tt.f, tt.record) })
	}
}

func benchReceive(b *testing.B, f logrus.Formatter, record RecordMode) {
	l := logrus.New()
	l.SetFormatter(f)
	w := jsonlog.NewWriter(io.Discard, 100*time.Millisecond)
	b.Cleanup(func() {
		if err := w.Close(); err != nil {
			b.Error(err)
		}
	})
	l.SetOutput(w)
	cfg := nodeConfigTB(b, "tcp://127.0.0.1:1", "me", "lobby")
	if record != RecordState {
		cfg.StateDir = b.TempDir()
	}
	delivered := 0
	s, err := New(cfg, l.WithFields(logrus.Fields{nodelog.FieldNode: "me", nodelog.FieldRun: "x"}),
		Options{OnEvent: func(e Event) {
			if _, ok := e.(Message); ok {
				delivered++
			}
		}, Record: record})
	if err != nil {
		b.Fatal(err)
	}
	s.client = &fakeClient{}
	s.link.firstUpOnce.Do(func() { close(s.link.firstUp) }) // as if connected: the sync request goes out
	p := s.p
	p.onConnected() // asks where the room stands: answered with "at 0"
	rep, err := json.Marshal(wire.SyncReply{V: wire.Version, ReqID: s.client.(*fakeClient).reqs[0].ReqID, Conv: "lobby"})
	if err != nil {
		b.Fatal(err)
	}
	p.handle(inbound{topic: wire.InboxTopic("me"), payload: rep})
	msgs := make([]inbound, b.N)
	pad := strings.Repeat("x", 150)
	for i := range msgs {
		e := wire.Envelope{V: wire.Version, ID: fmt.Sprintf("peer-dn948oi7tqgt-%x", i+1), Room: "lobby", From: "peer",
			Boot: 1796099798378191421, Seq: uint64(i + 1), SentNS: 1796099798404460771, Body: fmt.Sprintf("load %d", i),
			Pad: pad, RoomSeq: uint64(i + 1), BrokerNS: 1796099798404460999}
		payload, err := e.Encode()
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = inbound{topic: wire.RoomTopic("lobby", "peer"), payload: payload}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range msgs {
		m := msgs[i]
		m.recvNS = time.Now().UnixNano()
		s.handle(nil, pahoMessage{m})
		batch := p.in.drain()
		for _, in := range batch {
			p.handle(in)
		}
		p.in.recycle(batch)
	}
	b.StopTimer()
	if delivered != b.N {
		b.Fatalf("%d of %d delivered", delivered, b.N)
	}
}

// pahoMessage is an inbound PUBLISH as paho hands it to the handler.
type pahoMessage struct{ in inbound }

func (m pahoMessage) Duplicate() bool   { return false }
func (m pahoMessage) Qos() byte         { return 1 }
func (m pahoMessage) Retained() bool    { return m.in.retained }
func (m pahoMessage) Topic() string     { return m.in.topic }
func (m pahoMessage) MessageID() uint16 { return 1 }
func (m pahoMessage) Payload() []byte   { return m.in.payload }
func (m pahoMessage) Ack()              {}
