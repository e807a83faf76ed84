// Package ticketkeys shares the keys that encrypt TLS session tickets
// between the replicas of a cluster, through the store.
//
// # Why
//
// A TLS client that has connected once keeps a session ticket and, on its
// next connection, resumes: no certificate is sent or verified and no
// signature made (the key exchange, X25519 in TLS 1.3, still happens).
// The ticket is encrypted with a key only the server knows; crypto/tls
// makes that key itself, per process. Behind a load balancer the next
// connection often lands on another replica, which cannot read the ticket
// and falls back to a full handshake with the device certificate.
// Replicas that use the same keys resume each other's sessions. What that
// saves is measured by proxy's BenchmarkTLSHandshake (a new connection
// with one request: 0.91 ms full, 0.66 ms resumed, client and gateway in
// one process, docs/scale-out.md).
//
// # The keys
//
// A key is 32 random bytes (crypto/rand), stored under the key use [Use]
// as a symmetric JWK ({"kty":"oct"}). It encrypts new tickets for
// [Rotation] from its CreatedAt, and decrypts them until its NotAfter,
// [Lifetime] after CreatedAt, when [Ring.Refresh] deletes it from the
// store ([store.Store.DeleteKeys]): a key that stays on disk after its
// tickets have expired would let whoever reads it later decrypt recorded
// TLS 1.2 resumptions (forward secrecy). These are the periods crypto/tls
// uses for its own keys.
//
// The successor of the key in use is written to the store [Prepublish]
// before it starts encrypting, with that start as its CreatedAt. Every
// replica reads the keys more often than that, so by the time any replica
// issues a ticket under the new key every other one can already decrypt
// it. Two replicas that write a successor at the same moment both succeed;
// every replica then picks the same one to encrypt with (the newest
// CreatedAt, then the greatest id) and decrypts with both.
//
// # Use
//
// [Ring.Refresh] reads the keys, writes a successor when one is due,
// deletes the expired ones and returns the keys in the order
// tls.Config.SetSessionTicketKeys takes them: the one that encrypts first.
// [Ring.Run] does that on a timer and hands each result to a function
// (proxy.Server.SetSessionTicketKeys). When the store cannot be read the
// keys in force stay; until the first successful read, crypto/tls uses
// its own.
package ticketkeys
