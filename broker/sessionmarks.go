package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/roomlog"
	"github.com/distchat/distchat/broker/wire"
)

// marksFile is the session marks' file in the data directory, taken every
// marksEvery.
const (
	marksFile  = "session-marks.json"
	marksEvery = time.Second
)

// sessionMarks say which chat messages each persistent session is owed
// after a restart, so that the room log, not a second copy of every
// delivery, gives them back (sessionStore leaves chat messages out): the
// records its subscriptions match above Routed, and those its Queued
// lists. Taken at a clean stop, they are exact; after a kill -9, at least
// once. They also name each such session and its subscriptions: Pebble
// keeps unsynced writes in memory until a 32 KiB block of its log fills
// (pebble v1.1.0), so a kill -9 loses the sessions written last.
type sessionMarks struct {
	Routed   map[string]uint64         `json:"routed"`             // per conversation, roomlog.Hook.Routed
	Sessions map[string]*markedSession `json:"sessions,omitempty"` // persistent sessions with chat subscriptions
}

// markedSession is one persistent session in the marks.
type markedSession struct {
	Client storage.Client         `json:"client"`
	Subs   []storage.Subscription `json:"subs"`
	Queued map[string][]uint64    `json:"queued,omitempty"` // per conversation, the sequences held unacknowledged
}

// roomRecords is what the marks need from the room log (roomlog.Hook).
type roomRecords interface {
	Routed() map[string]uint64
	Records(conv string, after uint64, limit int) ([]roomlog.Record, error)
}

// takeMarks reads the room log's positions, then the messages sessions
// hold: a record at or below a position is in its holder's Queued.
func takeMarks(rl roomRecords, clients map[string]*mqtt.Client) sessionMarks {
	m := sessionMarks{Routed: rl.Routed(), Sessions: map[string]*markedSession{}}
	for id, cl := range clients {
		if cl.Net.Inline || sessionEnds(cl.Properties.ProtocolVersion, cl.Properties.Clean, cl.Properties.Props.SessionExpiryInterval) {
			continue
		}
		subs := cl.State.Subscriptions.GetAll()
		ms := &markedSession{Client: storage.Client{ID: cl.ID, T: storage.ClientKey, Listener: cl.Net.Listener,
			Username: cl.Properties.Username, Clean: cl.Properties.Clean, ProtocolVersion: cl.Properties.ProtocolVersion,
			Properties: storage.ClientProperties{SessionExpiryInterval: cl.Properties.Props.SessionExpiryInterval,
				SessionExpiryIntervalFlag: cl.Properties.Props.SessionExpiryIntervalFlag}},
			Queued: map[string][]uint64{}}
		for f, sub := range subs {
			if chatFilter(f) {
				ms.Subs = append(ms.Subs, storage.Subscription{T: storage.SubscriptionKey, Client: id, Filter: f, Qos: sub.Qos,
					Identifier: sub.Identifier, NoLocal: sub.NoLocal, RetainHandling: sub.RetainHandling, RetainAsPublished: sub.RetainAsPublished})
			}
		}
		if len(ms.Subs) == 0 {
			continue
		}
		slices.SortFunc(ms.Subs, func(a, b storage.Subscription) int { return strings.Compare(a.Filter, b.Filter) })
		for _, pk := range cl.State.Inflight.GetAll(false) {
			if pk.FixedHeader.Type != packets.Publish {
				continue
			}
			if conv, seq, ok := chatRecord(pk.TopicName, pk.Payload); ok {
				ms.Queued[conv] = append(ms.Queued[conv], seq)
			}
		}
		for _, seqs := range ms.Queued {
			slices.Sort(seqs)
		}
		m.Sessions[id] = ms
	}
	return m
}

// sessionEnds is Mochi v2.7.9's rule (loadClients) for a session that does
// not outlive its connection: MQTT 5 with no session expiry, MQTT 3.1.1
// with a clean session.
func sessionEnds(protocolVersion byte, clean bool, expiry uint32) bool {
	return (protocolVersion == 5 && expiry == 0) || (protocolVersion < 5 && clean)
}

// chatRecord returns the conversation and sequence number of a stamped
// room message or DM.
func chatRecord(topic string, payload []byte) (conv string, seq uint64, ok bool) {
	t, err := wire.ParseTopic(topic)
	if err != nil || (t.Kind != wire.KindRoom && t.Kind != wire.KindDM) {
		return "", 0, false
	}
	e, err := wire.DecodeEnvelope(payload, len(payload)+1) // a stamped record may exceed max_payload
	if err != nil || e.RoomSeq == 0 {
		return "", 0, false
	}
	return wire.Conversation(t), e.RoomSeq, true
}

// errNoMarks is readMarks' answer when there is no marks file.
var errNoMarks = errors.New("no session marks")

func readMarks(path string) (sessionMarks, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sessionMarks{}, errNoMarks
	}
	if err != nil {
		return sessionMarks{}, fmt.Errorf("read session marks: %w", err)
	}
	return decodeMarks(b)
}

func decodeMarks(b []byte) (sessionMarks, error) {
	var m sessionMarks
	if err := json.Unmarshal(b, &m); err != nil {
		return sessionMarks{}, fmt.Errorf("session marks: %w", err)
	}
	maps.DeleteFunc(m.Sessions, func(_ string, s *markedSession) bool { return s == nil })
	return m, nil
}

// writeMarks replaces the marks file by a rename, so a crash leaves old or
// new marks, never a mix. No sync: older marks only give more again.
func writeMarks(path string, b []byte) error {
	err := os.WriteFile(path+".tmp", b, 0o600)
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		return fmt.Errorf("write session marks: %w", err)
	}
	return nil
}

// marksKeeper recovers persistent sessions and their chat messages at
// start and keeps the marks current.
type marksKeeper struct {
	rl   roomRecords
	srv  *mqtt.Server
	path string
	log  *logrus.Entry

	// marks are the marks on file at start, read on first use. Without a
	// file nothing is owed, so a first start does not replay the log's
	// history; unreadable marks owe every record a session's subscriptions
	// match (within limits.max_inflight).
	marks     func() sessionMarks
	startOnce sync.Once
	stop      chan struct{} // closed by close
	done      chan struct{} // closed when the loop has ended; nil until started

	// The marks written last and their session count: only the loop
	// touches them, and close after it has ended.
	last         []byte
	lastSessions int
}

func newMarksKeeper(rl roomRecords, srv *mqtt.Server, path string, log *logrus.Entry) *marksKeeper {
	k := &marksKeeper{rl: rl, srv: srv, path: path, log: log, stop: make(chan struct{}), lastSessions: -1}
	k.marks = sync.OnceValue(func() sessionMarks {
		m, err := readMarks(path)
		switch {
		case errors.Is(err, errNoMarks):
			m = sessionMarks{Routed: rl.Routed()}
		case err != nil:
			log.WithError(err).WithField("event", logevent.SessionMarksFailed).
				Warn("session marks unreadable: persistent sessions get every record their subscriptions match again")
		}
		return m
	})
	return k
}

// clients adds to the stored clients the marked sessions they lack.
func (k *marksKeeper) clients(stored []storage.Client) []storage.Client {
	have := map[string]bool{}
	for _, c := range stored {
		have[c.ID] = true
	}
	for _, id := range slices.Sorted(maps.Keys(k.marks().Sessions)) {
		if !have[id] {
			c := k.marks().Sessions[id].Client
			c.ID = id
			stored = append(stored, c)
		}
	}
	return stored
}

// subscriptions adds to the stored subscriptions the marked ones they lack.
func (k *marksKeeper) subscriptions(stored []storage.Subscription) []storage.Subscription {
	have := map[[2]string]bool{}
	for _, s := range stored {
		have[[2]string{s.Client, s.Filter}] = true
	}
	for _, id := range slices.Sorted(maps.Keys(k.marks().Sessions)) {
		for _, s := range k.marks().Sessions[id].Subs {
			if !have[[2]string{id, s.Filter}] {
				s.Client = id
				stored = append(stored, s)
			}
		}
	}
	return stored
}

// recover returns the chat messages the sessions are owed, to load as
// messages in flight beside stored, and starts keeping the marks.
func (k *marksKeeper) recover(stored []storage.Message, clients []storage.Client, subs []storage.Subscription) []storage.Message {
	maxInflight := int(k.srv.Options.Capabilities.MaximumInflight) // mqtt.New sets it
	out, sessions := requeue(k.rl, k.marks(), clients, subs, stored, maxInflight)
	if len(out) > 0 {
		k.log.WithFields(logrus.Fields{"event": logevent.SessionsRequeued, "sessions": sessions, "messages": len(out)}).
			Info("chat messages requeued from the room log to persistent sessions")
	}
	k.startOnce.Do(func() {
		k.done = make(chan struct{})
		go k.loop()
	})
	return out
}

func (k *marksKeeper) loop() {
	defer close(k.done)
	t := time.NewTicker(marksEvery)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			k.checkpoint(false)
		}
	}
}

// checkpoint writes the marks if they changed; without force, not again
// while no persistent session subscribes to chat topics.
func (k *marksKeeper) checkpoint(force bool) {
	m := takeMarks(k.rl, k.srv.Clients.GetAll())
	if len(m.Sessions) == 0 && k.lastSessions == 0 && !force {
		return
	}
	b, _ := json.Marshal(m) // plain data: it cannot fail
	if bytes.Equal(b, k.last) {
		return
	}
	if err := writeMarks(k.path, b); err != nil {
		k.log.WithError(err).WithField("event", logevent.SessionMarksFailed).
			Warn("session marks not written: after a crash, persistent sessions get more messages again")
		return
	}
	k.last, k.lastSessions = b, len(m.Sessions)
}

// close ends the loop and, if the broker served, takes the marks a last
// time: at a clean stop they list exactly what each session holds.
func (k *marksKeeper) close() {
	close(k.stop)
	k.startOnce.Do(func() {}) // a recover after this starts nothing; one before has set done
	if k.done == nil {
		return // never served: the marks on file are still the ones to recover from
	}
	<-k.done
	k.checkpoint(true)
}
