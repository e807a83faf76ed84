//go:build unix

package sockio_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/sockio"
	"github.com/sekisho/sekisho/internal/testnet"
)

func TestConnNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := sockio.NewConn(a); c != a {
		t.Fatalf("NewConn of a pipe = %T, want the pipe itself", c)
	}
}

// A write larger than the socket buffers waits in the poller for the peer
// to read, and arrives whole and in order.
func TestConnLargeWrite(t *testing.T) {
	c0, s := testnet.TCPPair(t)
	c := sockio.NewConn(c0)
	if _, ok := c.(*sockio.Conn); !ok {
		t.Fatalf("NewConn of a TCP connection = %T", c)
	}
	if _, ok := c.(syscall.Conn); !ok {
		t.Fatal("a Conn is not a syscall.Conn")
	}
	msg := make([]byte, 8<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		s.SetReadDeadline(time.Now().Add(20 * time.Second))
		time.Sleep(50 * time.Millisecond) // let the buffers fill first
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(msg))))
		got <- b
	}()
	c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Write(msg); n != len(msg) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, msg) {
		t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(msg))
	}
	// And the other way, through Read.
	go s.Write([]byte("pong"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	if n, err := io.ReadFull(c, buf[:4]); n != 4 || err != nil || string(buf[:4]) != "pong" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// A write that cannot finish by its deadline fails as net.Conn.Write's
// does, saying how much was written.
func TestConnWriteDeadline(t *testing.T) {
	c0, _ := testnet.TCPPair(t) // the peer never reads
	c := sockio.NewConn(c0)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Write(make([]byte, 64<<20))
	var oe *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("Write past the deadline = %d, %v; want a write timeout", n, err)
	}
	if n <= 0 || n >= 64<<20 {
		t.Fatalf("Write past the deadline reported %d bytes written", n)
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("%T is not a timeout net.Error", err)
	}
}

// Writing to a connection the peer reset fails with the call's error in a
// *net.OpError of Op "write".
func TestConnWriteReset(t *testing.T) {
	c0, s := testnet.TCPPair(t)
	c := sockio.NewConn(c0)
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	time.Sleep(20 * time.Millisecond)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.Write([]byte("after the reset"))
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("Write after a reset = %v, want ECONNRESET or EPIPE in a write OpError", err)
	}
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
}

// crypto/tls runs over a Conn as over the TCP connection: a handshake and
// an exchange each way.
func TestConnTLS(t *testing.T) {
	c0, s0 := testnet.TCPPair(t)
	cert := selfSigned(t)
	srv := tls.Server(sockio.NewConn(s0), &tls.Config{Certificates: []tls.Certificate{cert}})
	cli := tls.Client(sockio.NewConn(c0), &tls.Config{InsecureSkipVerify: true})
	done := make(chan error, 1)
	go func() {
		srv.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 5)
		if _, err := io.ReadFull(srv, b); err != nil {
			done <- err
			return
		}
		_, err := srv.Write(append([]byte("re: "), b...))
		done <- err
	}()
	cli.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 9)
	if _, err := io.ReadFull(cli, b); err != nil || string(b) != "re: hello" {
		t.Fatalf("client read %q, %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
