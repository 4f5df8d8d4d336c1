package chatnode

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
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
// writes it for every delivery with a jsonlog.Fixed line, beside the same
// line through logrus.JSONFormatter and through log/slog's JSON handler,
// each over a buffered file: what package jsonlog buys.
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
	// The plain ways, each over a buffered file as the node's Writer is.
	b.Run("logrus.JSONFormatter+bufio", func(b *testing.B) {
		l := logrus.New()
		l.SetFormatter(&logrus.JSONFormatter{})
		l.SetOutput(bufferedFile(b))
		entry := l.WithFields(logrus.Fields{nodelog.FieldNode: "n0", nodelog.FieldRun: "x"})
		b.ReportAllocs()
		f := make(logrus.Fields, 16) // the pipeline would reuse one map for every line
		for b.Loop() {
			clear(f)
			f[nodelog.FieldTSNS] = time.Now().UnixNano()
			f[nodelog.FieldEvent], f[nodelog.FieldFrom], f[nodelog.FieldID] = nodelog.EventReceived, "n3", "n3-dn948oi7tqgt-1f"
			f[nodelog.FieldBoot], f[nodelog.FieldSeq], f[nodelog.FieldRoomSeq] = int64(1796099798378191421), uint64(31), uint64(307)
			f[nodelog.FieldSentNS], f[nodelog.FieldRecvNS] = int64(1796099798404460771), int64(1796099798405713501)
			f[nodelog.FieldLatencyUS], f[nodelog.FieldBytes], f[nodelog.FieldDuplicate] = int64(1252), 301, false
			f[nodelog.FieldVia], f[nodelog.FieldRoom] = nodelog.ViaLive, "lobby"
			entry.WithFields(f).Info("received")
		}
	})
	b.Run("slog.JSONHandler+bufio", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(bufferedFile(b), nil)).With(nodelog.FieldNode, "n0", nodelog.FieldRun, "x")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			log.LogAttrs(ctx, slog.LevelInfo, "received", slog.Int64(nodelog.FieldTSNS, time.Now().UnixNano()),
				slog.String(nodelog.FieldEvent, nodelog.EventReceived), slog.String(nodelog.FieldFrom, "n3"), slog.String(nodelog.FieldID, "n3-dn948oi7tqgt-1f"),
				slog.Int64(nodelog.FieldBoot, 1796099798378191421), slog.Uint64(nodelog.FieldSeq, 31), slog.Uint64(nodelog.FieldRoomSeq, 307),
				slog.Int64(nodelog.FieldSentNS, 1796099798404460771), slog.Int64(nodelog.FieldRecvNS, 1796099798405713501),
				slog.Int64(nodelog.FieldLatencyUS, 1252), slog.Int(nodelog.FieldBytes, 301), slog.Bool(nodelog.FieldDuplicate, false),
				slog.String(nodelog.FieldVia, nodelog.ViaLive), slog.String(nodelog.FieldRoom, "lobby"))
		}
	})
}

// bufferedFile is a fresh log file behind a 64 KiB bufio.Writer, flushed
// and closed at cleanup.
func bufferedFile(b *testing.B) *bufio.Writer {
	fh, err := os.Create(filepath.Join(b.TempDir(), "plain.log"))
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(fh, 64<<10)
	b.Cleanup(func() {
		if err := errors.Join(bw.Flush(), fh.Close()); err != nil {
			b.Error(err)
		}
	})
	return bw
}
