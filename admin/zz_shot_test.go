package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

func TestZZShots(t *testing.T) {
	if os.Getenv("SHOTS") == "" {
		t.Skip()
	}
	e := newEnv(t)
	seedDay(e)
	e.mustUser("alice", "山田 花子", "財務課", "財務")
	e.mustUser("bob", "鈴木 一郎", "税務課")
	e.mustPasskey("alice", "職場のPC", 1)
	e.mustDevice("PC-001", "alice", store.DeviceActive)
	e.mustDevice("PC-666", "bob", store.DeviceRevoked)
	_ = e.store.CreateSession(context.Background(), &store.Session{ID: "sess-alice", UserID: "alice", Device: "PC-001", IP: "10.1.5.6", CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(8 * time.Hour), LastSeen: t0})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := e.info
		info.RequestID = "x"
		e.console.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), &info)))
	}))
	defer srv.Close()
	for name, p := range map[string]string{"overview": "/", "audit": "/audit?since=2026-11-20", "timeline": "/timeline?user=alice", "users": "/users", "user": "/users/view?id=alice", "devices": "/devices", "revoke": "/revoke?kind=device&subject=PC-001", "policy": "/policy?user=alice&route=zaimu&zone=external&amr=hwk&amr=uv"} {
		out, err := exec.Command("/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1300,1400", "--screenshot=/tmp/shot-"+name+".png", srv.URL+Prefix+p).CombinedOutput()
		if err != nil {
			t.Logf("%s: %v %s", name, err, out)
		}
	}
}
