// Package sockio is the little the fast path does on a socket itself,
// inside a syscall.RawConn callback: look whether anything is waiting,
// and write without blocking. Both h1transport (upstream connections) and
// proxy (client connections) write a message and wait for the answer in
// one RawConn.Read; this is the part they share.
//
// It is unix only; elsewhere the packages go through net.Conn.
package sockio
