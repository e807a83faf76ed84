package app

import (
	"context"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/store"
)

// watchRevocations follows the store's revocation log: each revocation
// that appears while the gateway runs (made by `sekisho revoke`, the
// console, or another replica) is applied to the device registry at once.
// Sessions are ended by the session manager's own sync. The admin audit
// record is written by whoever revoked: the CLI (through audit.OpenWriter),
// or App.Revoke for the console and monitoring.
func (a *App) watchRevocations(ctx context.Context) {
	var cursor int64
	if revs, err := a.Store.RevocationsSince(ctx, 0); err == nil && len(revs) > 0 {
		cursor = revs[len(revs)-1].Seq
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		revs, err := a.Store.RevocationsSince(ctx, cursor)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("reading revocations", "err", err)
			}
			continue
		}
		for _, r := range revs {
			cursor = max(cursor, r.Seq)
			if r.Kind == store.RevokeDevice {
				a.devices.markRevoked(r.Subject)
			}
		}
	}
}

// recordRevocation writes the admin audit record of a revocation.
func (a *App) recordRevocation(r *store.Revocation) {
	rec := &audit.Record{
		Event: audit.EventAdmin, User: r.By, Action: "revoke_" + r.Kind, Target: r.Subject,
		Detail: r.Reason, Decision: audit.DecisionAllow, Enforced: true, Rule: "revoke",
	}
	err := a.Trail.Append(rec)
	observe(a.Monitor, rec, err)
	if err != nil {
		a.log.Error("audit revocation", "kind", r.Kind, "subject", r.Subject, "err", err)
	}
}
