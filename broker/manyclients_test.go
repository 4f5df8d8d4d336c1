package broker_test

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// TestManyClientsDrill: 500 MQTT clients on the broker binary (a child
// process, durability process), 50 rooms of 10, each client publishing one
// message a second at QoS 1 for 30 s. Every member must receive every message
// of its room; the test reports the broker's CPU, peak RSS and the p99
// delivery latency. It takes about a minute and most of two cores, so it runs
// only with DISTCHAT_DRILL_MANY=1.
func TestManyClientsDrill(t *testing.T) {
	if os.Getenv("DISTCHAT_DRILL_MANY") == "" {
		t.Skip("set DISTCHAT_DRILL_MANY=1 to run the 500-client drill")
	}
	const rooms, perRoom, seconds = 50, 10, 30
	br := &brokertest.Process{Bin: brokertest.Build(t), Args: []string{"-tcp", "127.0.0.1:0", "-http", "", "-data", t.TempDir()}}
	br.Start(t)
	addr := br.Addr

	var mu sync.Mutex
	received := map[string]int{} // room/id → deliveries
	var lat []time.Duration
	clients := make([]paho.Client, 0, rooms*perRoom)
	for r := range rooms {
		room := fmt.Sprint("room", r)
		for m := range perRoom {
			id := fmt.Sprintf("c%d-%d", r, m)
			o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetUsername(id).
				SetProtocolVersion(4).SetOrderMatters(false).SetConnectTimeout(wait)
			c := paho.NewClient(o)
			if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatalf("connect %s: %v", id, tok.Error())
			}
			t.Cleanup(func() { c.Disconnect(50) })
			tok := c.Subscribe(wire.RoomFilter(room), 1, func(_ paho.Client, msg paho.Message) {
				e, err := wire.DecodeEnvelope(msg.Payload(), 0)
				if err != nil {
					t.Errorf("bad delivery: %v", err)
					return
				}
				mu.Lock()
				received[room+"/"+e.ID]++
				lat = append(lat, time.Duration(time.Now().UnixNano()-e.SentNS))
				mu.Unlock()
			})
			if !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatalf("subscribe %s: %v", id, tok.Error())
			}
			clients = append(clients, c)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room, me := fmt.Sprint("room", i/perRoom), fmt.Sprintf("c%d-%d", i/perRoom, i%perRoom)
			time.Sleep(time.Duration(i) * time.Second / time.Duration(len(clients))) // spread the sends over the second
			for n := range seconds {
				e := wire.Envelope{V: wire.Version, ID: fmt.Sprintf("%s-%d", me, n), Room: room, From: me, Seq: uint64(n + 1),
					SentNS: time.Now().UnixNano(), Body: "drill"}
				payload, err := e.Encode()
				if err != nil {
					t.Error(err)
					return
				}
				if tok := c.Publish(wire.RoomTopic(room, me), 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
					t.Errorf("publish %s: %v", e.ID, tok.Error())
				}
				time.Sleep(time.Until(start.Add(time.Duration(n+1) * time.Second)))
			}
		}()
	}
	wg.Wait()
	want := rooms * perRoom * seconds * perRoom
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling a counter with a deadline
	}
	cpu, rss := br.Stop(t)
	mu.Lock()
	defer mu.Unlock()
	if len(lat) != want {
		t.Errorf("%d deliveries, want %d", len(lat), want)
	}
	for k, n := range received {
		if n != perRoom {
			t.Errorf("%s delivered %d times, want %d", k, n, perRoom)
		}
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	t.Logf("500 clients, %d msg/s sent, %d deliveries: p50 %s, p99 %s, max %s; broker CPU %s (%.1f µs per delivery), peak RSS %d MB",
		rooms*perRoom, len(lat), p(0.5), p(0.99), lat[len(lat)-1], cpu, float64(cpu.Microseconds())/float64(len(lat)), rss/1024)
}
