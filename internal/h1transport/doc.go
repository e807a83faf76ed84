// Package h1transport is an HTTP/1.1 [http.RoundTripper] for the gateway's
// upstream requests that does the round trip on the calling goroutine.
//
// # Why
//
// [http.Transport] runs two goroutines per connection (a reader and a
// writer) and hands every request and response between them and the
// caller over channels. For a reverse proxy that forwards many small,
// body-less requests, those hand-offs are a large share of the CPU spent
// per request. [Transport] keeps a LIFO pool of idle connections and, for
// the common case, writes the request, reads the response and returns the
// connection to the pool on the caller's own goroutine: no goroutine per
// connection, no channel per request.
//
// # What it takes, what it passes on
//
// The fast path takes a request only when all of these hold:
//
//   - the URL scheme is "http" or "https" and the URL has a host;
//   - the method is not CONNECT;
//   - the request has no body (Body is nil or [http.NoBody], ContentLength
//     is 0, no TransferEncoding);
//   - there is no Upgrade header, no "upgrade" token in Connection, and no
//     Expect header;
//   - the method and every header field name and value are well formed
//     (the checks net/http makes before it sends).
//
// Every other request (uploads, WebSocket and other upgrades, 100-continue,
// CONNECT, anything malformed) goes unchanged to [Options.Fallback],
// normally an [http.Transport] configured like the gateway's.
// [Transport.CloseIdleConnections] closes the fallback's idle connections
// too.
//
// The fast path speaks HTTP/1.1 only (ALPN "http/1.1" over TLS), uses no
// proxy, and does not ask for or decompress gzip: the client's own
// Accept-Encoding goes through as it is, as a reverse proxy wants.
//
// # It parses nothing itself
//
// The request is serialised by [http.Request.Write] and the response
// parsed by [http.ReadResponse], body framing (Content-Length, chunked,
// until-close, trailers) included. This package only moves bytes between
// those and a connection, and decides when a connection may be reused:
// after the body was read to its end, when neither side asked to close,
// no error happened and nothing beyond the response was received.
// Before it reuses an idle connection it peeks at the socket without
// waiting (on Unix): a connection the upstream closed, or wrote to while
// it was idle, is closed instead of being read as the next answer. (Over
// TLS, bytes that crypto/tls read ahead together with a response are not
// visible to either check; only a misbehaving upstream sends them.)
//
// # Errors
//
// When the request's context ends, the round trip and the body read stop
// (the connection's deadline is moved into the past) and the error
// matches [context.Canceled] or [context.DeadlineExceeded] with
// [errors.Is]. [Options.ResponseHeaderTimeout] gives an error that is a
// [net.Error] whose Timeout method reports true. A GET, HEAD, OPTIONS or
// TRACE that fails on a reused idle connection before any byte of the
// response arrived is sent again once on a new connection, as net/http
// does; other methods are not.
package h1transport
