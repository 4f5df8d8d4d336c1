package netwait

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"
)

// freeAddr returns a loopback address nothing listens on (a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// TestFreePort: the port is free, a listener can take it.
func TestFreePort(t *testing.T) {
	l, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatalf("listen on the free port: %v", err)
	}
	l.Close()
}

func TestListening(t *testing.T) {
	errGone := errors.New("child exited")
	tests := []struct {
		name    string
		listen  bool
		gone    func() error
		timeout time.Duration
		want    error
	}{
		{"a listener answers", true, nil, time.Minute, nil},
		{"the child is gone", false, func() error { return errGone }, time.Minute, errGone},
		{"nobody listens before the context ends", false, func() error { return nil }, 50 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			if tt.listen {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				addr = l.Addr().String()
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err := Listening(ctx, addr, tt.gone)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Errorf("Listening = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestListeningWaitsForALateListener: a listener that comes up while the
// wait is under way is found.
func TestListeningWaitsForALateListener(t *testing.T) {
	addr := freeAddr(t)
	tries := 0
	up := make(chan net.Listener, 1)
	gone := func() error { // called after each refused dial: listen after the third
		if tries++; tries == 3 {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err // the port was taken meanwhile: report it
			}
			up <- l
		}
		return nil
	}
	if err := Listening(context.Background(), addr, gone); err != nil {
		t.Fatal(err)
	}
	(<-up).Close()
	if tries != 3 {
		t.Errorf("dialled %d times before the listener answered, want 3", tries)
	}
}
