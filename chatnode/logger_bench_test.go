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
	f := make(logrus.Fields, 16) // the pipeline reuses one map for every line
	for b.Loop() {
		clear(f)
		f[wire.FieldEvent], f[wire.FieldFrom], f[wire.FieldID] = wire.EventReceived, "n3", "n3-dn948oi7tqgt-1f"
		f[wire.FieldBoot], f[wire.FieldSeq], f[wire.FieldRoomSeq] = int64(1796099798378191421), uint64(31), uint64(307)
		f[wire.FieldSentNS], f[wire.FieldRecvNS] = int64(1796099798404460771), int64(1796099798405713501)
		f[wire.FieldLatencyUS], f[wire.FieldBytes], f[wire.FieldDuplicate] = int64(1252), 301, false
		f[wire.FieldVia], f[wire.FieldRoom] = wire.ViaLive, "lobby"
		log.WithFields(f).Info("received")
	}
}
