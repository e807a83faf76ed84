//go:build linux

package idlewatch_test

import (
	"fmt"
	"net"
	"time"

	"github.com/sekisho/sekisho/internal/idlewatch"
)

// A server hands its idle connections to a watch and serves each again
// when its next request arrives.
func Example() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	served := make(chan string)
	w, err := idlewatch.New(func(v any) {
		// Readable: serve it on a goroutine of its own.
		go func() {
			c := v.(net.Conn)
			b := make([]byte, 5)
			n, _ := c.Read(b)
			served <- string(b[:n])
		}()
	}, func(v any) {
		v.(net.Conn).Close() // idle too long
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	client, _ := net.Dial("tcp", ln.Addr().String())
	defer client.Close()
	server, _ := ln.Accept()
	defer server.Close()
	w.Add(server.(*net.TCPConn), server, time.Now().Add(time.Minute))
	fmt.Println("watched:", w.Len())

	client.Write([]byte("hello"))
	fmt.Println("served:", <-served)
	fmt.Println("watched:", w.Len())
	// Output:
	// watched: 1
	// served: hello
	// watched: 0
}
