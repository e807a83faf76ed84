// Package idlewatch waits for many idle connections at once without a
// goroutine for each.
//
// # Why
//
// A Go server keeps a goroutine blocked in a read for every idle
// keep-alive connection, and that goroutine's stack (2 to 4 KiB when it
// has only waited, 4 KiB over TLS, whose read path is deeper) stays with
// the connection for as long as it is open: 40 MiB for the 10,000
// connections a city's staff leave open over TLS.
//
// # How
//
// A [Watch] holds the idle connections in one epoll instance instead; one
// goroutine, parked in Go's own poller on that instance (an epoll
// instance is readable while it has events to report), learns which
// connection has data or was closed by its peer and hands it back
// through the ready callback of [New], and hands those whose deadline
// passes to the expire callback.
//
// Each connection is registered one-shot by [Watch.Add]: it is reported
// at most once per Add, and its registration is disarmed from then on.
// The kernel removes a registration when the connection is closed, so a
// caller closes a connection it does not add again, and nothing else is
// needed to forget it. Connections are known by an id of the watch's,
// never by their file descriptor, so a descriptor the kernel reuses
// cannot be mistaken for an earlier connection.
//
// # What the caller must ensure
//
// Only a connection with nothing buffered above its socket may be added:
// bytes read but not consumed (a bufio.Reader's, or a record crypto/tls
// has already read) would never make the socket readable again. Over TLS
// that holds after a read of the connection timed out.
//
// It is Linux only (epoll); elsewhere [New] returns an error and callers
// keep a goroutine per idle connection.
package idlewatch
