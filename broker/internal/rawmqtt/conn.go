package rawmqtt

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Conn is one raw MQTT connection. It sends exactly the packets it is given
// and queues every packet the broker sends, in order, for Next; it answers
// nothing by itself.
type Conn struct {
	nc      net.Conn
	version byte
	// writeMu guards writes to nc (tests send from more than one goroutine).
	writeMu sync.Mutex
	in      chan Packet
	// readErr is why the reader stopped; set before in is closed.
	readErr   error
	closeOnce sync.Once
	closeErr  error
}

// ErrTimeout is Next's error when no packet came within its timeout.
var ErrTimeout = errors.New("no packet within the timeout")

// maxIncoming bounds one packet from the broker (tests send small ones).
const maxIncoming = 1 << 20

// inQueue is how many received packets wait for Next before the reader
// stops reading (and so, through TCP, the broker stops writing).
const inQueue = 4096

// Dial opens a TCP connection to addr that speaks protocol version v.
// Nothing is sent: the first packet should be a CONNECT (see Connect).
func Dial(addr string, v byte) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &Conn{nc: nc, version: v, in: make(chan Packet, inQueue)}
	go c.read()
	return c, nil
}

func (c *Conn) read() {
	defer close(c.in)
	br := bufio.NewReader(c.nc)
	for {
		p, err := Read(br, c.version, maxIncoming)
		if err != nil {
			c.readErr = err
			return
		}
		c.in <- p
	}
}

// Version is the protocol version the connection speaks.
func (c *Conn) Version() byte { return c.version }

// Send encodes p for the connection's version and writes it.
func (c *Conn) Send(p Packet) error {
	b, err := Encode(p, c.version)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Next returns the next packet from the broker, waiting up to timeout. Once
// the broker has closed the connection and every packet before that was
// returned, it returns the read error (io.EOF for a clean close).
func (c *Conn) Next(timeout time.Duration) (Packet, error) {
	select {
	case p, ok := <-c.in:
		if !ok {
			return Packet{}, fmt.Errorf("connection closed: %w", c.readErr)
		}
		return p, nil
	case <-time.After(timeout):
		return Packet{}, ErrTimeout
	}
}

// Connect sends a CONNECT with props and returns the broker's CONNACK.
func (c *Conn) Connect(cn Connect, props Props, timeout time.Duration) (Packet, error) {
	cn.Version = c.version
	if err := c.Send(Packet{Type: CONNECT, Connect: &cn, Props: props}); err != nil {
		return Packet{}, err
	}
	p, err := c.Next(timeout)
	if err != nil {
		return Packet{}, fmt.Errorf("CONNACK: %w", err)
	}
	if p.Type != CONNACK {
		return p, fmt.Errorf("got %s, want CONNACK", TypeName(p.Type))
	}
	return p, nil
}

// Close closes the network connection without a DISCONNECT (as a crash
// or a lost network would); send a DISCONNECT first for a clean end.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.nc.Close() })
	return c.closeErr
}
