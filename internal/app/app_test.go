package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store"
)

func TestDeviceCertificateAndClassRequirements(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	pc, fp := w.Device("PC-0123", "sato")
	const juki = "juki.gw.example.lg.jp"
	withDevice := append(apptest.UV, "mtls")

	// No certificate on a client_cert: required route: refused, never forwarded.
	tok := w.Login("sato", apptest.UV, time.Minute, "", "")
	r := w.Get(juki, "/", tok, nil)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "端末") {
		t.Fatalf("3B without a device certificate: %d %s", r.Status, r.Body)
	}
	if len(w.Seen()) != 0 {
		t.Fatal("the upstream saw a refused request")
	}

	// With the certificate, a fresh UV passkey session bound to it: allowed,
	// and the upstream learns the device.
	tok = w.Login("sato", withDevice, time.Minute, "PC-0123", fp)
	r = w.Get(juki, "/records", tok, &pc)
	if r.Status != 200 || r.Body != "upstream path=/records user=sato device=PC-0123 class=3B" {
		t.Fatalf("3B with device and fresh UV: %d %q", r.Status, r.Body)
	}

	// Authentication older than the class allows: step-up to the login page.
	old := w.Login("sato", withDevice, 2*time.Hour, "PC-0123", fp)
	r = w.Get(juki, "/records", old, &pc)
	if r.Status != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/.sekisho/login") {
		t.Fatalf("stale authentication: %d %v", r.Status, r.Header.Get("Location"))
	}

	// A session bound to the device is refused with another device's certificate.
	other, _ := w.Device("PC-9999", "sato")
	if r = w.Get(juki, "/records", tok, &other); r.Status != http.StatusSeeOther {
		t.Fatalf("cookie replayed from another device: %d", r.Status)
	}

	// A user without the role: denied even with everything else right.
	if r = w.Get(juki, "/records", w.Login("suzuki", withDevice, time.Minute, "PC-0123", fp), &pc); r.Status != http.StatusForbidden {
		t.Fatalf("user without role on 3B: %d", r.Status)
	}

	// The kill switch on the device: refused at once, before any CRL.
	if err := w.App.Revoke(context.Background(), &store.Revocation{Kind: store.RevokeDevice, Subject: "PC-0123", By: "test", Reason: "lost PC"}); err != nil {
		t.Fatal(err)
	}
	// Its bound session no longer matches a valid device: back to login.
	if r = w.Get(juki, "/records", tok, &pc); r.Status != http.StatusSeeOther {
		t.Fatalf("session of a revoked device: %d", r.Status)
	}
	// A new login on that PC is refused with words that say why.
	r = w.Get(juki, "/records", w.Login("sato", apptest.UV, time.Minute, "", ""), &pc)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "利用停止") {
		t.Fatalf("revoked device: %d %s", r.Status, r.Body)
	}

	// Certificates revoked in the CRL are refused once the CRL file changes.
	pc2, _ := w.Device("PC-0200", "sato")
	if _, err := w.CA.RevokeDevice("PC-0200", "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if err := w.CA.WriteCRL(filepath.Join(w.Dir, "crl.pem"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = w.Get(juki, "/", w.Login("sato", apptest.UV, time.Minute, "", ""), &pc2)
		if r.Status == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate revoked in the CRL still allowed: %d", r.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every decision is in the trail, which verifies after a clean stop.
	res := w.Verify()
	if !res.OK() || !res.Closed {
		t.Fatalf("audit trail after a clean stop: %+v", res)
	}
	recs, _, err := audit.QueryAll(w.AuditDir(), audit.Filter{User: "sato"})
	if err != nil {
		t.Fatal(err)
	}
	// A 3B allow has the durable decision record (before forwarding) and
	// the outcome record, with the same request id.
	byID := map[string][]*audit.Record{}
	var deny, revoke int
	for _, r := range recs {
		switch {
		case r.Event == "access" && r.Class == "3B" && r.Decision == "allow":
			byID[r.RequestID] = append(byID[r.RequestID], r)
		case r.Event == "access" && r.Decision == "deny":
			deny++
		}
	}
	all, _, _ := audit.QueryAll(w.AuditDir(), audit.Filter{})
	for _, r := range all {
		if r.Event == "admin" && r.Action == "revoke_device" && r.Target == "PC-0123" {
			revoke++
		}
	}
	if len(byID) == 0 {
		t.Error("no 3B allow records")
	}
	for id, rs := range byID {
		if len(rs) != 2 || rs[0].Status != 0 || rs[1].Status != 200 || rs[0].Seq > rs[1].Seq {
			t.Errorf("3B request %s: want a durable decision record then an outcome record, got %+v", id, rs)
		}
	}
	if deny < 3 || revoke != 1 {
		t.Errorf("audit: %d denials for sato (want ≥3), %d revoke records (want 1)", deny, revoke)
	}
}

// TestManualDeviceRegistration: with devices.registration: manual a PC
// with a valid certificate waits as pending, satisfies device_cert but not
// registered_device, until an administrator registers it; then it is
// allowed within the registry's reload (1 s).
func TestManualDeviceRegistration(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Extra: "devices: {registration: manual}"})
	pc, fp := w.Device("PC-0123", "sato")
	const juki = "juki.gw.example.lg.jp"
	tok := w.Login("sato", append(apptest.UV, "mtls"), time.Minute, "PC-0123", fp)
	r := w.Get(juki, "/records", tok, &pc)
	if r.Status == http.StatusOK {
		t.Fatalf("an unregistered PC reached 3B (which needs a registered device): %d %q", r.Status, r.Body)
	}
	ctx := context.Background()
	var d *store.Device
	deadline := time.Now().Add(3 * time.Second)
	for {
		var err error
		if d, err = w.App.Store.GetDevice(ctx, "PC-0123"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the PC was not recorded on first sight: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d.Status != store.DevicePending || d.Owner != "sato" {
		t.Fatalf("first sight recorded %+v, want pending, owner sato", d)
	}
	if rec := w.Records(r.Header.Get("X-Request-Id")); len(rec) == 0 || rec[0].Decision == audit.DecisionAllow {
		t.Fatalf("refusal of the pending PC: records %v", rec)
	}

	// An administrator registers it (the console and certs issue --config
	// write the same).
	d.Status = store.DeviceActive
	if err := w.App.Store.UpsertDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Second)
	for {
		if r = w.Get(juki, "/records", tok, &pc); r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registered PC still refused: %d %q", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
