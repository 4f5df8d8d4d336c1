package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/config"
)

// engineNodeEnv, when set, makes the test binary one node of
// BenchmarkEngineThreeProcesses (TestMain) instead of running tests.
const engineNodeEnv = "DISTCHAT_ENGINE_NODE"

// engineShape is what the loops publish: to how many streams, and whether
// each record carries the room log's headers.
type engineShape struct {
	Name       string
	Partitions int
	// Fence adds what each room log append carries: a message id (the
	// duplicate window) and the expected last subject sequence.
	Fence bool
}

// engineNode is one child process's part, passed as JSON in engineNodeEnv.
type engineNode struct {
	Index   int
	Listens []string
	Cluster string
	Dir     string
	Records int
	Shape   engineShape
}

// TestMain runs the package's tests, or, in a child that
// BenchmarkEngineThreeProcesses started, one engine node.
func TestMain(m *testing.M) {
	if spec := os.Getenv(engineNodeEnv); spec != "" {
		os.Exit(runEngineNode(spec))
	}
	os.Exit(m.Run())
}

// BenchmarkEngineThreeProcesses is BenchmarkEngineClosedLoops with each
// node in a process of its own, as a cluster's brokers run: three processes
// share the cores, and every hand-off between nodes wakes another process.
// The test binary starts itself three times as a node; the first runs the
// ten closed loops over its in-process connection, as broker 1 publishes
// for its clients. shape=plain is one stream and bare records; shape=log
// is what the room log appends (three partitions, a message id and the
// expected last subject sequence on each record), with no MQTT, sequencer
// or view. It reports msg/s and the three processes' CPU (user+system,
// from /proc) per record: the engine's share of a cluster's pairs-10.
//
//	go test -run '^$' -bench EngineThreeProcesses -benchtime 50000x ./broker/cluster/
func BenchmarkEngineThreeProcesses(b *testing.B) {
	for _, shape := range []engineShape{{"plain", 1, false}, {"log", 3, true}} {
		b.Run("shape="+shape.Name, func(b *testing.B) { engineThreeProcesses(b, shape) })
	}
}

func engineThreeProcesses(b *testing.B, shape engineShape) {
	listens := loopbackAddrs(b, 3)
	name := fmt.Sprintf("engine-%d-%d", os.Getpid(), time.Now().UnixNano())
	nodes := make([]*engineChild, 3)
	for i := range nodes {
		spec := engineNode{Index: i, Listens: listens, Cluster: name, Dir: b.TempDir(), Records: b.N, Shape: shape}
		nodes[i] = startEngineChild(b, spec)
	}
	for _, n := range nodes {
		n.expect(b, "ready", 2*time.Minute)
	}
	cpu := childrenCPU(b, nodes)
	b.ResetTimer()
	if _, err := io.WriteString(nodes[0].stdin, "go\n"); err != nil {
		b.Fatal(err)
	}
	took, err := time.ParseDuration(strings.TrimPrefix(nodes[0].expect(b, "done ", 10*time.Minute), "done "))
	if err != nil {
		b.Fatal(err)
	}
	used := childrenCPU(b, nodes) - cpu
	b.ReportMetric(float64(b.N)/took.Seconds(), "msg/s")
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// engineChild is a node process; closing its stdin stops it.
type engineChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startEngineChild(b *testing.B, spec engineNode) *engineChild {
	js, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), engineNodeEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &engineChild{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// expect waits for the child's next line, which must start with prefix.
func (c *engineChild) expect(b *testing.B, prefix string, within time.Duration) string {
	select {
	case line, ok := <-c.lines:
		if !ok || !strings.HasPrefix(line, prefix) {
			b.Fatalf("engine node: got %q (open %v), want %q…", line, ok, prefix)
		}
		return line
	case <-time.After(within):
		b.Fatalf("engine node: no %q within %s", prefix, within)
		return ""
	}
}

// childrenCPU is the children's user+system time so far, from
// /proc/PID/stat (fields 14 and 15, in the kernel's fixed 100 ticks a second).
func childrenCPU(b *testing.B, nodes []*engineChild) time.Duration {
	var sum time.Duration
	for _, n := range nodes {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		// The command name (field 2) is in parentheses and may hold spaces.
		fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		for _, f := range fields[11:13] { // utime, stime: fields 14 and 15 of the whole line
			ticks, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			sum += time.Duration(ticks) * 10 * time.Millisecond
		}
	}
	return sum
}

// runEngineNode is a child's whole life: start the node, say "ready", and
// (the first node) run the loops on "go" and say "done <duration>"; stop
// when stdin closes.
func runEngineNode(raw string) int {
	var spec engineNode
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "engine node:", err)
		return 2
	}
	if err := engineNodeLife(spec, bufio.NewReader(os.Stdin)); err != nil {
		fmt.Fprintf(os.Stderr, "engine node %d: %v\n", spec.Index, err)
		return 1
	}
	return 0
}

func engineNodeLife(spec engineNode, stdin *bufio.Reader) error {
	routes := make([]string, len(spec.Listens))
	for i, l := range spec.Listens {
		routes[i] = "nats://" + l
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	c := config.Cluster{Node: fmt.Sprintf("e%d", spec.Index+1), Listen: spec.Listens[spec.Index], Routes: routes,
		Replicas: len(routes), Name: spec.Cluster}
	node, err := Start(context.Background(), c, spec.Dir, 1<<20, logrus.NewEntry(log))
	if err != nil {
		return err
	}
	defer node.Kill()
	if spec.Index == 0 {
		if err := createEngineStreams(node.js, spec.Shape.Partitions); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	if spec.Index == 0 {
		if line, err := stdin.ReadString('\n'); err != nil || line != "go\n" {
			return fmt.Errorf("want go, got %q: %v", line, err)
		}
		took, err := engineLoops(node.js, spec.Records, spec.Shape)
		if err != nil {
			return err
		}
		fmt.Println("done", took)
	}
	_, err = io.Copy(io.Discard, stdin)
	return err
}

func createEngineStreams(js jetstream.JetStream, partitions int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k := range partitions {
		cfg := jetstream.StreamConfig{Name: fmt.Sprintf("ENGINE-%d", k), Subjects: []string{fmt.Sprintf("engine.%d.>", k)},
			Storage: jetstream.FileStorage, Replicas: 3}
		for {
			_, err := js.CreateStream(ctx, cfg)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("create %s: %w", cfg.Name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// engineLoops runs ten closed loops to records in all and returns how long
// they took.
func engineLoops(js jetstream.JetStream, records int, shape engineShape) (time.Duration, error) {
	const loops = 10
	per := (records + loops - 1) / loops
	payload := make([]byte, 256)
	errs := make([]error, loops)
	began := time.Now()
	var wg sync.WaitGroup
	for l := range loops {
		wg.Go(func() {
			subject := fmt.Sprintf("engine.%d.%d", l%shape.Partitions, l)
			var last uint64
			for i := range per {
				m := nats.NewMsg(subject)
				m.Data = payload
				if shape.Fence {
					m.Header.Set(jetstream.MsgIDHeader, subject+"-"+strconv.Itoa(i))
					m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
				}
				ack, err := publishFenced(js, m)
				if err != nil {
					errs[l] = err
					return
				}
				last = ack.Sequence
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return time.Since(began), nil
}

// publishFenced publishes m, again while the stream refuses it because the
// subject's previous record is still in process at the leader (its
// acknowledgement can come before the leader clears it), as the room log's
// appends are retried.
func publishFenced(js jetstream.JetStream, m *nats.Msg) (*jetstream.PubAck, error) {
	for {
		ack, err := js.PublishMsg(context.Background(), m)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant {
			return ack, err
		}
	}
}
