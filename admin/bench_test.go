package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

// benchEnv is a console over a trail of n access records spread over the
// 24 hours before t0 (about 100 users, 4 classes, a tenth denied).
func benchEnv(b *testing.B, n int, opts ...Option) *env {
	b.Helper()
	e := newEnv(b, opts...)
	classes := []string{"1", "2", "3B", "3A"}
	step := 24 * time.Hour / time.Duration(n)
	for i := 0; i < n; i++ {
		dec := "allow"
		var reasons []string
		if i%10 == 0 {
			dec, reasons = "deny", []string{"zone_not_allowed"}
		}
		rec := &audit.Record{Time: t0.Add(-24*time.Hour + time.Duration(i)*step), Event: audit.EventAccess,
			RequestID: "r" + strconv.Itoa(i), User: "u" + strconv.Itoa(i%100), Device: "PC-" + strconv.Itoa(i%80),
			IP: "10.1.0.1", Zone: "chonai", Route: "zaimu", Class: classes[i%4], Method: "GET", Path: "/",
			Decision: dec, Enforced: true, Reasons: reasons, Status: 200}
		if err := e.trail.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.trail.AppendDurable(context.Background(), &audit.Record{Event: audit.EventSystem, Action: "bench"}); err != nil {
		b.Fatal(err)
	}
	return e
}

func serveBench(b *testing.B, e *env, path string) {
	b.Helper()
	info := e.info
	for b.Loop() {
		r := httptest.NewRequest("GET", path, nil)
		r = r.WithContext(reqctx.With(r.Context(), &info))
		w := httptest.NewRecorder()
		e.console.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s = %d", path, w.Code)
		}
	}
}

// BenchmarkOverview100k: the overview over 100,000 records in the last 24
// hours read afresh, verification cached (as between "verify now" clicks).
func BenchmarkOverview100k(b *testing.B) {
	e := benchEnv(b, 100_000, WithVerifyEvery(time.Hour), WithReportEvery(0))
	serveBench(b, e, Prefix+"/")
}

// BenchmarkVerify100k: the overview when the whole trail is verified again.
func BenchmarkVerify100k(b *testing.B) {
	e := benchEnv(b, 100_000, WithVerifyEvery(0), WithReportEvery(0))
	serveBench(b, e, Prefix+"/")
}

// BenchmarkSearch100k: one user's newest page over 100,000 records.
func BenchmarkSearch100k(b *testing.B) {
	e := benchEnv(b, 100_000)
	serveBench(b, e, Prefix+"/audit?user=u7&since=2026-11-22")
}

// BenchmarkTimeline100k: one device's day over 100,000 records.
func BenchmarkTimeline100k(b *testing.B) {
	e := benchEnv(b, 100_000)
	serveBench(b, e, Prefix+"/timeline?device=PC-3&since=2026-11-22")
}

// usersBenchEnv is a console over a store of n staff, each with one
// passkey and a tenth with a device, as a large city or a prefecture.
func usersBenchEnv(b *testing.B, n int) *env {
	b.Helper()
	e := newEnv(b)
	ctx := context.Background()
	for i := range n {
		id := "staff" + strconv.Itoa(i)
		if err := e.store.CreateUser(ctx, &store.User{ID: id, DisplayName: "職員 " + strconv.Itoa(i), Department: "課" + strconv.Itoa(i%40), Roles: []string{"職員"}}); err != nil {
			b.Fatal(err)
		}
		if err := e.store.AddCredential(ctx, &store.Credential{ID: []byte(id), UserID: id, PublicKey: []byte{1}, CreatedAt: t0, LastUsedAt: t0}); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkUsersPage20k: the users page (first page) and the overview over
// 20,000 staff.
func BenchmarkUsersPage20k(b *testing.B) {
	e := usersBenchEnv(b, 20_000)
	b.Run("users", func(b *testing.B) { serveBench(b, e, Prefix+"/users") })
	b.Run("overview", func(b *testing.B) { serveBench(b, e, Prefix+"/") })
}
