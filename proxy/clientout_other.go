//go:build !unix

package proxy

// clientRaw: without a unix socket path, every answer is written the
// usual way.
type clientRaw struct{}

func (*clientRaw) reset(*trackedConn) {}

func (*clientRaw) on() bool { return false }

func (o *clientOut) sendAndWait() (bool, error) { return false, o.flushPending() }

func (o *clientOut) readable() bool { return false }

func (*clientRaw) release() {}
