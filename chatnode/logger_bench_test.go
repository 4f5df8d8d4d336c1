package chatnode

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/wire"
	"github.com/distchat/distchat/config"
)

// BenchmarkLogReceived is one "received" line through the node's logger
// (newLogger: ts_ns hook, jsonlog, batched -log file), as the pipeline
// writes it for every delivery.
func BenchmarkLogReceived(b *testing.B) {
	cfg := config.DefaultNode()
	cfg.Nick, cfg.Run, cfg.Log = "n0", "x", filepath.Join(b.TempDir(), "n0.log")
	log, closeLog, err := newLogger(cfg, io.Discard, stderrFull)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeLog)
	b.ReportAllocs()
	for b.Loop() {
		log.WithFields(logrus.Fields{
			wire.FieldEvent: wire.EventReceived, wire.FieldFrom: "n3", wire.FieldID: "n3-dn948oi7tqgt-1f",
			wire.FieldBoot: int64(1796099798378191421), wire.FieldSeq: uint64(31), wire.FieldRoomSeq: uint64(307),
			wire.FieldSentNS: int64(1796099798404460771), wire.FieldRecvNS: int64(1796099798405713501),
			wire.FieldLatencyUS: int64(1252), wire.FieldBytes: 301, wire.FieldDuplicate: false,
			wire.FieldVia: wire.ViaLive, wire.FieldRoom: "lobby",
		}).Info("received")
	}
}
