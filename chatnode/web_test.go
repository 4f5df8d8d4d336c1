package chatnode

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestWebFlags: `chatnode web` refuses unsafe or incomplete settings with
// one clear line each, before it listens.
func TestWebFlags(t *testing.T) {
	users := "../config/examples/users.yaml"
	state := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"-h"}, exitOK, "chatnode web: serve distchat as a web page"},
		{"no users file", []string{"-state", state}, exitUsage, "-users FILE is required"},
		{"no state dir", []string{"-users", users}, exitUsage, "-state DIR is required"},
		{"beyond loopback without TLS", []string{"-users", users, "-state", state, "-http", "0.0.0.0:0"}, exitUsage, "beyond loopback: serve TLS"},
		{"half of TLS", []string{"-users", users, "-state", state, "-tls-cert", "c.pem"}, exitUsage, "-tls-cert and -tls-key go together"},
		{"zero limits", []string{"-users", users, "-state", state, "-max-tabs", "0"}, exitUsage, "must be positive"},
		{"body beyond payload", []string{"-users", users, "-state", state, "-max-body", "100000"}, exitUsage, "at most half of -max-payload"},
		{"missing users file", []string{"-users", "no/such.yaml", "-state", state}, exitUsage, "users file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), append([]string{"web"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}

// TestWebServesUntilCancelled: the web node serves its page at the address
// it prints, and stops cleanly when its context ends (SIGINT/SIGTERM in main).
func TestWebServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		defer pw.Close()
		done <- Main(ctx, []string{"web", "-users", "../config/examples/users.yaml", "-state", t.TempDir(), "-http", "127.0.0.1:0",
			"-broker", "tcp://127.0.0.1:1"}, strings.NewReader(""), pw, &stderr)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no line on stdout: %v", err)
	}
	url := strings.Fields(strings.SplitN(line, "open ", 2)[1])[0]
	res, err := http.Get(url + "/")
	if err != nil {
		t.Fatalf("get the page at %s (from %q): %v", url, line, err)
	}
	if err := res.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Errorf("the page: %s", res.Status)
	}
	go func() {
		if _, err := io.Copy(io.Discard, pr); err != nil {
			return
		}
	}()
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
}
