package roomlog

import (
	"slices"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

func appendTo(t *testing.T, s Store, conv string, n int) {
	t.Helper()
	for range n {
		if _, err := s.Append(conv, 1, func(uint64) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDMIndexRebuiltOnOpen: the index of each user's DM conversations comes
// back from the log's conversation keys when the broker restarts, and grows
// with appends after it.
func TestDMIndexRebuiltOnOpen(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, st, "@alice,bob", 3)
	appendTo(t, st, "@bob,carol", 1)
	appendTo(t, st, "lobby", 2)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	h := New(st, nil, config.RoomLog{}, logrus.NewEntry(logrus.New()))
	cases := []struct {
		user string
		want []string
	}{
		{"alice", []string{"@alice,bob"}},
		{"bob", []string{"@alice,bob", "@bob,carol"}},
		{"carol", []string{"@bob,carol"}},
		{"dave", []string{}},
		{"lobby", []string{}},
	}
	for _, c := range cases {
		if got := h.dms.of(c.user); !slices.Equal(got, c.want) {
			t.Errorf("after reopening, DMs of %s = %v, want %v", c.user, got, c.want)
		}
	}
	if _, err := h.storeOnce("@alice,dave", wire.Envelope{V: 1, ID: "x1", From: "alice", To: "dave"}); err != nil {
		t.Fatal(err)
	}
	if got := h.dms.of("dave"); !slices.Equal(got, []string{"@alice,dave"}) {
		t.Errorf("after an append, DMs of dave = %v, want [@alice,dave]", got)
	}
}

// TestListAnswersDMsAndGrantedRooms: a List request gets the user's DM
// conversations and the asked rooms it may read, with last sequence numbers,
// in pages that continue after the last key.
func TestListAnswersDMsAndGrantedRooms(t *testing.T) {
	st, err := Open("", Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, st, "@alice,bob", 3)
	appendTo(t, st, "@bob,carol", 1)
	appendTo(t, st, "@alice,carol", 5) // not bob's
	appendTo(t, st, "lobby", 2)
	appendTo(t, st, "secret", 4)
	h := New(st, nil, config.RoomLog{MaxPayload: 100}, logrus.NewEntry(logrus.New()))
	h.SetReadCheck(func(user, room string) bool { return room != "secret" })
	var got []wire.ConvInfo
	req := wire.SyncRequest{V: 1, List: true, Rooms: []string{"lobby", "secret", "quiet"}}
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("the listing does not end")
		}
		var rep wire.SyncReply
		h.list(&rep, "bob", req)
		got = append(got, rep.Convs...)
		if !rep.More {
			break
		}
		if len(rep.Convs) == 0 {
			t.Fatal("more with an empty page")
		}
		req.Conv = rep.Convs[len(rep.Convs)-1].Conv
	}
	want := []wire.ConvInfo{{Conv: "@alice,bob", LastSeq: 3}, {Conv: "@bob,carol", LastSeq: 1}, {Conv: "lobby", LastSeq: 2}, {Conv: "quiet", LastSeq: 0}}
	if !slices.Equal(got, want) {
		t.Errorf("bob's listing %v, want %v (no other pair's DMs, no room he may not read)", got, want)
	}
}
