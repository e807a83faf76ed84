package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "sekisho-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, "sqlite", filepath.Join(dir, "sekisho.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	defer cancel() // stop Run before the store closes

	cfg := &config.Config{}
	cfg.WebAuthn.RPID = "gw.example.lg.jp"
	m, err := session.New(cfg, st, session.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	go m.Run(ctx) // key rotation and revocations from other replicas

	// After a passkey login on a PC with a device certificate:
	fp := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	c := &session.Claims{User: "tanaka", AMR: []string{"hwk", "uv", "mtls"}, Device: "pc-0042", CertFP: fp}
	token, err := m.Issue(ctx, c)
	if err != nil {
		log.Fatal(err)
	}

	// On each request:
	got, err := m.Verify(ctx, token, fp)
	fmt.Println(got.User, got.AMR, err)
	_, err = m.Verify(ctx, token, "") // the cookie without its device
	fmt.Println(errors.Is(err, session.ErrDeviceMismatch))

	// The kill switch:
	if err := m.Revoke(ctx, &store.Revocation{Kind: store.RevokeDevice, Subject: "pc-0042", By: "csirt"}); err != nil {
		log.Fatal(err)
	}
	_, err = m.Verify(ctx, token, fp)
	fmt.Println(errors.Is(err, session.ErrRevoked))
	// Output:
	// tanaka [hwk uv mtls] <nil>
	// true
	// true
}
