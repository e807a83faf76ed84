// Package idlewatch waits for many idle connections at once without a
// goroutine for each.
//
// A Go server keeps a goroutine blocked in a read for every idle
// keep-alive connection, and that goroutine's stack (2 to 4 KiB when it
// has only waited, 4 KiB over TLS, whose read path is deeper) stays with
// the connection for as long as it is open: 40 MiB for the 10,000
// connections a city's staff leave open over TLS. A [Watch] holds the idle
// connections in one epoll instance instead; one goroutine, parked in
// Go's own poller on that instance, learns which connection has data (or
// was closed by its peer) and hands it back through a callback, and drops
// those whose deadline passes through another.
//
// Each connection is registered one-shot: it is reported at most once per
// [Watch.Add], and its registration is disarmed from then on. The kernel
// removes a registration when the connection is closed, so a caller
// closes a connection it does not add again, and nothing else is needed
// to forget it.
//
// It is Linux only (epoll); elsewhere [New] returns an error and callers
// keep a goroutine per idle connection.
package idlewatch
