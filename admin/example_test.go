package admin_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/admin"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

// The console is wired from the running gateway's parts and mounted with
// proxy.WithAdmin; the gateway authenticates and authorises the admin and
// puts reqctx.Info in the request.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "sekisho-admin-example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "policy.csv"), []byte("allow, role:admin, class:3A, admin\n"), 0o600)
	cfg := &config.Config{
		Classes: map[string]config.Class{"3A": {MaxAuthAge: 15 * time.Minute}},
		Policy:  config.Policy{File: filepath.Join(dir, "policy.csv")},
		Audit:   config.Audit{Dir: filepath.Join(dir, "audit")},
	}
	ctx := context.Background()
	st, _ := store.Open(ctx, "sqlite", filepath.Join(dir, "s.db"))
	defer st.Close()
	trail, _ := audit.Open(cfg.Audit)
	defer trail.Close()
	eng, _ := policy.New(cfg)
	sessions, _ := session.New(cfg, st)
	key, _ := admin.CSRFKeyFromStore(ctx, st) // shared by every replica

	console, err := admin.New(admin.Deps{
		Config:    cfg,
		Store:     st,
		AuditDir:  trail.Dir(),
		AuditKeys: trail.PublicJWKS(),
		Record:    trail.AppendDurable,
		Revoke:    sessions.Revoke,
		Invite: func(ctx context.Context, user string, ttl time.Duration) (string, error) {
			return authn.CreateInvitation(ctx, st, user, "example", ttl, time.Now())
		},
		Explain: eng.Explain,
		PolicyText: func() (string, string) {
			version, text := eng.Text()
			return version, string(text)
		},
		PolicyFileDiffers: eng.FileDiffers,
		CSRFKey:           key,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Without the gateway's request context the console refuses.
	w := httptest.NewRecorder()
	console.ServeHTTP(w, httptest.NewRequest("GET", admin.Prefix+"/users", nil))
	fmt.Println(w.Code)

	// As the gateway calls it for an authorised admin.
	r := httptest.NewRequest("GET", admin.Prefix+"/users", nil)
	r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{User: "admin1", SessionID: "s1", RequestID: "r1"}))
	w = httptest.NewRecorder()
	console.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// 403
	// 200 text/html; charset=utf-8
}
