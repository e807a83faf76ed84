//go:build !unix

package h1transport

import (
	"io"
	"net"
)

type peeker struct{}

func newPeeker(*conn) {}

// usable reports whether an idle connection may carry a request. Without
// a way to peek at the socket, it is assumed so; a dead one is caught by
// the retry of idempotent requests.
func usable(*conn) bool { return true }

// rawIO is the unix socket path of ExchangeGet (usable_unix.go); elsewhere
// every exchange goes through net.Conn.
type rawIO struct{}

func newRawIO(interface{}) *rawIO { return nil }

func newReader(net.Conn) io.Reader { return nil }

func (*rawIO) sendRaw([]byte, bool) (int, error) { return 0, nil }
