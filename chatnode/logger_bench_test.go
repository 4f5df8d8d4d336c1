package chatnode

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/jsonlog"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/config"
)

// BenchmarkLogReceived is one "received" line through the node's logger
// (newLogger: jsonlog with ts_ns, batched -log file), as the pipeline
// writes it for every delivery: with a jsonlog.Fixed line, as the pipeline
// does with this logger, and through logrus, as it does with others.
func BenchmarkLogReceived(b *testing.B) {
	cfg := config.DefaultNode()
	cfg.Nick, cfg.Run, cfg.Log = "n0", "x", filepath.Join(b.TempDir(), "n0.log")
	log, closeLog, err := newLogger(cfg, io.Discard, stderrFull)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeLog)
	b.Run("fixed", func(b *testing.B) {
		fx, err := jsonlog.NewFixed(log, logrus.InfoLevel, "received", nodelog.FieldEvent, nodelog.FieldFrom, nodelog.FieldID,
			nodelog.FieldBoot, nodelog.FieldSeq, nodelog.FieldRoomSeq, nodelog.FieldSentNS, nodelog.FieldRecvNS, nodelog.FieldLatencyUS,
			nodelog.FieldBytes, nodelog.FieldDuplicate, nodelog.FieldVia, nodelog.FieldRoom)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := fx.Line(time.Now(), jsonlog.String(nodelog.EventReceived), jsonlog.String("n3"), jsonlog.String("n3-dn948oi7tqgt-1f"),
				jsonlog.Int(1796099798378191421), jsonlog.Uint(31), jsonlog.Uint(307), jsonlog.Int(1796099798404460771),
				jsonlog.Int(1796099798405713501), jsonlog.Int(1252), jsonlog.Int(301), jsonlog.Bool(false),
				jsonlog.String(nodelog.ViaLive), jsonlog.String("lobby")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("logrus", func(b *testing.B) {
		b.ReportAllocs()
		f := make(logrus.Fields, 16) // the pipeline reuses one map for every line
		for b.Loop() {
			clear(f)
			f[nodelog.FieldEvent], f[nodelog.FieldFrom], f[nodelog.FieldID] = nodelog.EventReceived, "n3", "n3-dn948oi7tqgt-1f"
			f[nodelog.FieldBoot], f[nodelog.FieldSeq], f[nodelog.FieldRoomSeq] = int64(1796099798378191421), uint64(31), uint64(307)
			f[nodelog.FieldSentNS], f[nodelog.FieldRecvNS] = int64(1796099798404460771), int64(1796099798405713501)
			f[nodelog.FieldLatencyUS], f[nodelog.FieldBytes], f[nodelog.FieldDuplicate] = int64(1252), 301, false
			f[nodelog.FieldVia], f[nodelog.FieldRoom] = nodelog.ViaLive, "lobby"
			log.WithFields(f).Info("received")
		}
	})
}
