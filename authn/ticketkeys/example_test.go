package ticketkeys_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/authn/ticketkeys"
	"github.com/sekisho/sekisho/store"
)

// Every replica builds a Ring on the shared store, gives the first result
// to its TLS configuration before serving, and keeps it fresh with Run.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ticketkeys")
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, "sqlite", filepath.Join(dir, "sekisho.db")) // PostgreSQL in a cluster
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	ring := ticketkeys.New(st)
	keys, err := ring.Refresh(ctx)
	if err != nil {
		log.Fatal(err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	cfg.SetSessionTicketKeys(keys)
	fmt.Println("keys:", len(keys))

	ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	ring.Run(ctx, time.Minute, cfg.SetSessionTicketKeys) // returns when ctx ends
	// Output: keys: 1
}
