package authn_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

// Example wires the service as the proxy does: mount its handler, identify
// each request, and send requests without a session to the login page. It
// also enrolls a user the way `sekisho users invite` does.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "authn-example")
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg := &config.Config{}
	cfg.Server.Listen = ":8443"
	cfg.WebAuthn.RPID = "gw.example.lg.jp"
	cfg.Routes = []config.Route{{Name: "zaimu", Host: "zaimu.gw.example.lg.jp", Class: "2"}}

	st, err := store.Open(ctx, "sqlite", filepath.Join(dir, "sekisho.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	sm, _ := session.New(cfg, st, session.WithLogger(quiet))
	svc, err := authn.New(cfg, st, sm, authn.WithLogger(quiet),
		authn.WithEvents(func(ctx context.Context, ev authn.Event) { fmt.Println("event:", ev.Kind, ev.User) }))
	if err != nil {
		fmt.Println(err)
		return
	}

	// Enrollment: a one-time URL for a new user.
	_ = st.CreateUser(ctx, &store.User{ID: "yamada", DisplayName: "山田 太郎", Roles: []string{"zaimu-user"}})
	token, _ := svc.Invite(ctx, "yamada", 24*time.Hour)
	enroll, _ := authn.EnrollURL(cfg, "", token)
	fmt.Println(strings.TrimSuffix(enroll, token) + "…")

	// The proxy's side.
	mux := http.NewServeMux()
	mux.Handle("/.sekisho/", svc.Handler())
	mux.Handle("/.well-known/sekisho/", svc.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id, err := svc.Identify(r) // ErrNoSession, session.ErrExpired, ErrUserDisabled…
		if err != nil {
			svc.RequireLogin(w, r)
			return
		}
		_ = svc.Refresh(w, r, id)
		fmt.Fprintln(w, "hello", id.User)
	})

	req := httptest.NewRequest(http.MethodGet, "https://zaimu.gw.example.lg.jp/ledger", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Location"))

	// Output:
	// event: invite yamada
	// https://zaimu.gw.example.lg.jp:8443/.sekisho/enroll?token=…
	// 303 /.sekisho/login?rd=https%3A%2F%2Fzaimu.gw.example.lg.jp%2Fledger
}
