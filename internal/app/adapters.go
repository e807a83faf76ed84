package app

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/authn/mtls"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/monitor"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/proxy"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

// The adapters bind the packages to the gateway's small interfaces
// (proxy/hooks.go), so that proxy imports none of them.

// authnAdapter is a proxy.Authenticator over authn.Service.
type authnAdapter struct {
	svc *authn.Service
	sm  *session.Manager
	// refreshed remembers when each session's cookie was last reissued, so
	// a client that keeps sending the old cookie (an API client, or a
	// browser's parallel requests) does not get a signature and a store
	// write on every request.
	refreshed *lru.Cache[string, time.Time]
	now       func() time.Time
}

// refreshEvery bounds cookie reissues per session.
const refreshEvery = 30 * time.Second

func newAuthnAdapter(svc *authn.Service, sm *session.Manager, now func() time.Time) *authnAdapter {
	c, _ := lru.New[string, time.Time](100_000)
	return &authnAdapter{svc: svc, sm: sm, refreshed: c, now: now}
}

var _ proxy.Authenticator = (*authnAdapter)(nil)

func (a *authnAdapter) Handler() http.Handler { return a.svc.Handler() }

func (a *authnAdapter) Authenticate(w http.ResponseWriter, r *http.Request, info *reqctx.Info) error {
	id, err := a.svc.Identify(r)
	if err != nil {
		if errors.Is(err, authn.ErrNoSession) {
			return proxy.ErrNoSession
		}
		return &proxy.ReasonError{Reason: sessionReason(err), Err: err}
	}
	// A refresh the store cannot record (the database is unreachable)
	// does not end the session: the cookie the client holds stays valid
	// until its idle timeout (fail-static, docs/scale-out.md).
	if id.NeedsRefresh {
		now := a.now()
		if last, ok := a.refreshed.Get(id.SessionID); ok && now.Sub(last) < refreshEvery {
			id.NeedsRefresh = false
		} else {
			a.refreshed.Add(id.SessionID, now)
		}
	}
	if err := a.svc.Refresh(w, r, id); errors.Is(err, session.ErrRevoked) || errors.Is(err, session.ErrExpired) {
		return err
	}
	info.User, info.Roles, info.Department = id.User, id.Roles, id.Department
	info.AMR, info.AuthTime, info.SessionID = id.AMR, id.AuthTime, id.SessionID
	info.Identity = id
	return nil
}

func (a *authnAdapter) RequireLogin(w http.ResponseWriter, r *http.Request) { a.svc.RequireLogin(w, r) }

func (a *authnAdapter) RequireStepUp(w http.ResponseWriter, r *http.Request, reasons []string) {
	a.svc.RequireStepUp(w, r, reasons)
}

func (a *authnAdapter) Assertion(info *reqctx.Info) (string, error) {
	id, ok := info.Identity.(*authn.Identity)
	if !ok {
		return "", errors.New("no identity for assertion")
	}
	if info.Device != "" && id.Device != info.Device {
		c := *id
		c.Device = info.Device
		id = &c
	}
	return a.svc.Assertion(id, info.Route, info.Class, info.Zone)
}

func (a *authnAdapter) CookieName() string { return a.sm.CookieName(true) }

// sessionReason names a refused session for the audit record.
func sessionReason(err error) string {
	switch {
	case errors.Is(err, session.ErrRevoked):
		return "session_revoked"
	case errors.Is(err, session.ErrExpired):
		return "session_expired"
	case errors.Is(err, session.ErrDeviceMismatch):
		return "device_mismatch"
	case errors.Is(err, authn.ErrUserDisabled):
		return "user_disabled"
	case errors.Is(err, authn.ErrUnknownUser):
		return "unknown_user"
	case errors.Is(err, session.ErrInvalid):
		return "session_invalid"
	}
	return "session_refused"
}

// deviceAdapter is a proxy.DeviceVerifier over mtls.Verifier plus the
// device registry: a device revoked in the registry is refused at once,
// before any CRL is published.
type deviceAdapter struct {
	v   *mtls.Verifier
	reg *deviceRegistry
}

var errDeviceRevoked = errors.New("device revoked in the registry")

func (d *deviceAdapter) Verify(chain []*x509.Certificate) (string, string, string, error) {
	dev, err := d.v.Verify(chain)
	if err != nil {
		return "", "", "", err
	}
	if d.reg.revoked(dev.ID) {
		return "", "", "", errDeviceRevoked
	}
	d.reg.seen(dev.ID, dev.User, dev.Fingerprint)
	return dev.ID, dev.Fingerprint, dev.User, nil
}

func (d *deviceAdapter) Code(err error) string {
	if errors.Is(err, errDeviceRevoked) || errors.Is(err, mtls.ErrRevoked) {
		return "device_revoked"
	}
	return "device_cert_" + mtls.Code(err)
}

func (d *deviceAdapter) Reason(err error) (string, string) {
	if errors.Is(err, errDeviceRevoked) {
		return "この端末は利用停止されています。情報政策課に連絡してください。", "This device has been isolated. Please contact the IT department."
	}
	return mtls.Reason(err)
}

// deviceRegistry caches the store's device records for the hot path and
// records first and last sight of each device (at most once a minute).
type deviceRegistry struct {
	st  store.Store
	now func() time.Time
	// manual: a device first seen waits as pending (devices.registration).
	manual bool

	mu      sync.Mutex
	devices map[string]*store.Device
	touched map[string]time.Time
}

func newDeviceRegistry(st store.Store, now func() time.Time, manual bool) *deviceRegistry {
	return &deviceRegistry{st: st, now: now, manual: manual, devices: map[string]*store.Device{}, touched: map[string]time.Time{}}
}

// load reads every device into the cache; called at start and whenever a
// revocation arrives.
func (r *deviceRegistry) load(ctx context.Context) error {
	list, err := r.st.ListDevices(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]*store.Device, len(list))
	for _, d := range list {
		m[d.ID] = d
	}
	r.mu.Lock()
	r.devices = m
	r.mu.Unlock()
	return nil
}

func (r *deviceRegistry) get(id string) *store.Device {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.devices[id]
}

func (r *deviceRegistry) revoked(id string) bool {
	d := r.get(id)
	return d != nil && d.Status == store.DeviceRevoked
}

// markRevoked applies a device revocation locally at once.
func (r *deviceRegistry) markRevoked(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.devices[id]; ok {
		c := *d
		c.Status = store.DeviceRevoked
		r.devices[id] = &c
	} else {
		r.devices[id] = &store.Device{ID: id, Status: store.DeviceRevoked}
	}
}

// seen registers a device on first sight (owner from its certificate;
// pending instead of active under devices.registration: manual) and
// records its last sight.
func (r *deviceRegistry) seen(id, owner, fp string) {
	now := r.now()
	r.mu.Lock()
	d, known := r.devices[id]
	last := r.touched[id]
	if known && now.Sub(last) < time.Minute {
		r.mu.Unlock()
		return
	}
	r.touched[id] = now
	if !known {
		status := store.DeviceActive
		if r.manual {
			status = store.DevicePending
		}
		d = &store.Device{ID: id, Owner: owner, Fingerprints: []string{fp}, Status: status, FirstSeen: now, LastSeen: now}
		r.devices[id] = d
	}
	r.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if !known {
			if _, err := r.st.GetDevice(ctx, id); errors.Is(err, store.ErrNotFound) {
				_ = r.st.UpsertDevice(ctx, d)
				return
			}
		}
		_ = r.st.TouchDevice(ctx, id, fp, now)
	}()
}

// policyAdapter is a proxy.Decider over policy.Engine.
type policyAdapter struct {
	e   *policy.Engine
	reg *deviceRegistry
}

func (p *policyAdapter) Decide(ctx context.Context, info *reqctx.Info, now time.Time) proxy.Verdict {
	// The request is the engine's for the call only (its decision and its
	// cache keep none of it): one from the pool instead of an allocation
	// of a few hundred bytes per request.
	req := policyRequests.Get().(*policy.Request)
	defer func() {
		*req = policy.Request{}
		policyRequests.Put(req)
	}()
	*req = policy.Request{
		User: info.User, Roles: info.Roles, Department: info.Department, Authenticated: info.User != "",
		Route: info.Route, Class: info.Class, Segment: info.Segment, Action: info.Action, Mode: info.Mode,
		Zone: info.Zone, AMR: info.AMR, AuthTime: info.AuthTime, Device: info.Device,
		Time: now, Method: info.Method, Path: info.Path,
	}
	if info.Device != "" {
		if d := p.reg.get(info.Device); d != nil && d.Status == store.DeviceActive {
			req.DeviceRegistered, req.DeviceOwner, req.DeviceDepartment = true, d.Owner, d.Department
		}
	}
	d := p.e.Decide(req)
	v := proxy.Verdict{Effect: d.Effect.String(), Rule: d.Rule, Enforced: d.Enforced, AuditSync: d.AuditSync}
	for _, r := range d.Reasons {
		v.Reasons = append(v.Reasons, string(r))
		v.MessagesJA = append(v.MessagesJA, r.Message("ja"))
		v.MessagesEN = append(v.MessagesEN, r.Message("en"))
	}
	return v
}

var policyRequests = sync.Pool{New: func() any { return new(policy.Request) }}

// auditAdapter is a proxy.Recorder over audit.Trail; every record
// written is shown to the monitor.
type auditAdapter struct {
	t   *audit.Trail
	mon *monitor.Monitor
}

func (a *auditAdapter) Record(ctx context.Context, e *proxy.Entry, durable bool) error {
	var rec audit.Record // on the stack: Append, AppendDurable and Observe copy it
	fillFromInfo(&rec, e.Info)
	rec.Time = e.Time
	rec.Event, rec.Decision, rec.Enforced, rec.Rule = e.Event, e.Decision, e.Enforced, e.Rule
	rec.Reasons, rec.Status, rec.Bytes = e.Reasons, e.Status, e.Bytes
	rec.DurationMS = float64(e.Duration.Microseconds()) / 1000
	var err error
	if durable {
		err = a.t.AppendDurable(ctx, &rec)
	} else {
		err = a.t.Append(&rec)
	}
	observe(a.mon, &rec, err)
	return err
}

// observe hands a written record to the monitor, or reports the trail's
// failure to it.
func observe(mon *monitor.Monitor, rec *audit.Record, err error) {
	if mon == nil {
		return
	}
	if err != nil {
		mon.ReportHealth("audit", err)
		return
	}
	mon.Observe(rec)
}

func (a *auditAdapter) Healthy() error { return a.t.Healthy() }

// recordFromInfo copies the request context into a new audit record.
func recordFromInfo(info *reqctx.Info) *audit.Record {
	rec := &audit.Record{}
	fillFromInfo(rec, info)
	return rec
}

// fillFromInfo copies the request context into rec.
func fillFromInfo(rec *audit.Record, info *reqctx.Info) {
	if info == nil {
		return
	}
	rec.RequestID, rec.User, rec.Roles, rec.Device, rec.CertFP = info.RequestID, info.User, info.Roles, info.Device, info.CertFP
	rec.AMR, rec.AuthTime, rec.Zone = info.AMR, info.AuthTime, info.Zone
	if info.IP.IsValid() {
		rec.IP = info.IPString()
	}
	rec.Route, rec.Class, rec.Segment, rec.Method, rec.Host = info.Route, info.Class, info.Segment, info.Method, info.Host
	rec.Path = info.Path
	if info.RawQuery != "" {
		rec.Path += "?" + info.RawQuery
	}
}

// fingerprint is the hex SHA-256 of a certificate's DER.
func fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

func reqctxFrom(ctx context.Context) *reqctx.Info {
	if ctx == nil {
		return nil
	}
	return reqctx.From(ctx)
}
