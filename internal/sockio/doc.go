// Package sockio is the little the fast path does on a socket itself,
// inside a syscall.RawConn callback: look whether anything is waiting,
// write without blocking, and read (Reader). Both h1transport (upstream
// connections) and proxy (client connections) write a message and wait
// for the answer in one RawConn.Read, and read the answer through a
// Reader; this is the part they share.
//
// # Why RawSyscall
//
// net.Conn makes its reads and writes with syscall.Syscall, which tells
// the scheduler that the goroutine has entered a system call that may
// block (entersyscall). A call still running when the runtime's monitor
// next looks (from 20 µs on) has its P taken away and handed to another
// thread, and the thread that made it must find a P again when it
// returns. On loopback and on a busy two-core machine a socket write
// often runs that long — the kernel delivers the segment to the receiver
// within the write — so under load a gateway pays for thread hand-offs,
// futex wake-ups and the monitor's own wake-ups that buy nothing: the
// call never blocks, and the other thread only competes for the same
// cores. docs/performance.md (session 12) has the measurement: context
// switches, futex calls and the monitor's sleeps fell to about half.
//
// On Linux this package therefore makes its system calls with
// syscall.RawSyscall, on sockets the poller has made non-blocking only,
// so each returns at once (EAGAIN where net.Conn would park, and then
// this package parks in the poller too, through RawConn.Read). The
// trade-off is the one golang/go#19563 describes: the scheduler cannot
// run another goroutine on the P during the call, which for a call that
// does not block costs less than the hand-off. Elsewhere it uses the
// syscall package's wrappers, as net.Conn does. One more difference:
// RawSyscall is not instrumented for the race detector, which therefore
// does not see these calls read and write the callers' buffers (the
// callers' own accesses it still sees).
//
// It is unix only; elsewhere the packages go through net.Conn.
package sockio
