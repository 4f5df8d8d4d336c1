package mqttconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "distchat test broker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsProxy terminates TLS with cert on a loopback port and forwards each
// connection to backend; it returns the port's address.
func tlsProxy(t *testing.T, cert tls.Certificate, backend string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns and closed
	var conns []net.Conn
	closed := false
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			front, err := ln.Accept()
			if err != nil {
				return
			}
			back, err := net.Dial("tcp", backend)
			if err != nil {
				front.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, front, back)
			if closed {
				front.Close()
				back.Close()
			}
			mu.Unlock()
			wg.Go(func() { io.Copy(back, front); back.Close() })
			wg.Go(func() { io.Copy(front, back); front.Close() })
		}
	})
	return ln.Addr().String()
}

// TestPahoOverTLS: paho clients on Open exchange QoS 1 messages with the
// real broker through a TLS-terminating proxy, every one delivered; the
// server name is taken from the URL's host, as tls.DialWithDialer takes it.
func TestPahoOverTLS(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	cert, pool := selfSigned(t)
	addr := tlsProxy(t, cert, b.Addr)
	exchange(t, "tls://"+addr, &tls.Config{RootCAs: pool})
}

func TestOpenTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	addr := tlsProxy(t, cert, echo.Addr().String())
	open := func(cfg *tls.Config) (net.Conn, error) {
		return Open(&url.URL{Scheme: "tls", Host: addr}, mqtt.ClientOptions{TLSConfig: cfg, Dialer: &net.Dialer{Timeout: 10 * time.Second}})
	}

	t.Run("trusted: bytes both ways", func(t *testing.T) {
		c, err := open(&tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		tc, ok := c.(*Conn).Conn.(*tls.Conn)
		if !ok {
			t.Fatalf("Open(tls://) wraps %T, want *tls.Conn", c.(*Conn).Conn)
		}
		if _, plain := tc.NetConn().(*net.TCPConn); !plain {
			t.Errorf("TLS runs over %T, want a *net.TCPConn", tc.NetConn())
		}
		if _, err := c.Write([]byte("over tls")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len("over tls"))
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "over tls" {
			t.Fatalf("read back %q, %v; want \"over tls\"", got, err)
		}
	})
	t.Run("untrusted: refused with the verification error", func(t *testing.T) {
		c, err := open(&tls.Config{RootCAs: x509.NewCertPool()})
		if err == nil {
			c.Close()
			t.Fatal("Open trusted a certificate outside RootCAs")
		}
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Errorf("Open = %v, want a *tls.CertificateVerificationError", err)
		}
	})
	t.Run("another server name: refused", func(t *testing.T) {
		c, err := open(&tls.Config{RootCAs: pool, ServerName: "elsewhere.example"})
		if err == nil {
			c.Close()
			t.Fatal("Open accepted a certificate for another name")
		}
	})
}
