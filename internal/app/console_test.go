package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store"
)

// The console is decided like any route: route "admin", action "admin",
// class 3A (passkey with UV, device certificate, registered device, fresh
// authentication), here from 庁内 only, for the 情報政策 role.
func TestConsoleBehindTheAdminDecision(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Policy: apptest.DefaultPolicy + `
stepup, role:情報政策, route:admin, admin, 庁内 & 15分以内UV & 登録端末
`})
	ctx := context.Background()
	if err := w.App.Store.CreateUser(ctx, &store.User{ID: "admin1", DisplayName: "情報 太郎", Department: "情報政策課", Roles: []string{"情報政策"}}); err != nil {
		t.Fatal(err)
	}
	const host = "zaimu.gw.example.lg.jp"
	pc, fp := w.Device("PC-ADMIN-1", "admin1")
	full := append(apptest.UV, "mtls")

	// The administrator, fresh UV, registered device: the overview.
	r := w.Get(host, "/.sekisho/admin/", w.Login("admin1", full, time.Minute, "PC-ADMIN-1", fp), &pc)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "<html") {
		t.Fatalf("admin with everything: %d %.300s", r.Status, r.Body)
	}
	recs := w.Records(r.Header.Get("X-Request-Id"))
	if len(recs) == 0 || recs[0].Event != audit.EventAdmin || recs[0].Decision != "allow" || recs[0].User != "admin1" {
		t.Fatalf("console access records = %+v", recs)
	}

	// A user without the role: 403, recorded.
	r = w.Get(host, "/.sekisho/admin/", w.Login("suzuki", full, time.Minute, "PC-ADMIN-1", fp), &pc)
	if r.Status != http.StatusForbidden {
		t.Fatalf("non-admin: %d", r.Status)
	}
	if recs := w.Records(r.Header.Get("X-Request-Id")); len(recs) == 0 || recs[0].Decision != "deny" {
		t.Fatalf("non-admin records = %+v", recs)
	}

	// The administrator without a device certificate: refused (class 3A).
	r = w.Get(host, "/.sekisho/admin/", w.Login("admin1", apptest.UV, time.Minute, "", ""), nil)
	if r.Status != http.StatusForbidden {
		t.Fatalf("admin without a device: %d", r.Status)
	}

	// The administrator with an old authentication: step-up.
	r = w.Get(host, "/.sekisho/admin/", w.Login("admin1", full, time.Hour, "PC-ADMIN-1", fp), &pc)
	if r.Status != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "stepup") {
		t.Fatalf("admin with stale authentication: %d %s", r.Status, r.Header.Get("Location"))
	}

	// No session: to login, and the attempt is recorded.
	r = w.Get(host, "/.sekisho/admin/users", "", nil)
	if r.Status != http.StatusSeeOther || len(w.Records(r.Header.Get("X-Request-Id"))) == 0 {
		t.Fatalf("console without a session: %d", r.Status)
	}
}
