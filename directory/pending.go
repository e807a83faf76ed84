package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sekisho/sekisho/store"
)

// ActionScheduleCancel is the audit action of a cancelled scheduled change.
const ActionScheduleCancel = "user_schedule_cancel"

// Pending lists the scheduled changes not yet applied, soonest first.
func Pending(ctx context.Context, st store.Store) ([]*store.PendingUser, error) {
	d, ok := st.(store.Directory)
	if !ok {
		return nil, fmt.Errorf("listing scheduled user changes: store %T has none", st)
	}
	return d.ListPending(ctx, time.Time{})
}

// CancelPending removes the scheduled change seq before it is applied and
// writes a user_schedule_cancel audit record (WithAudit, WithOperator).
// store.ErrNotFound: no such change (already applied or cancelled).
func CancelPending(ctx context.Context, st store.Store, seq int64, opts ...Option) (*store.PendingUser, error) {
	o := buildOptions(opts)
	all, err := Pending(ctx, st)
	if err != nil {
		return nil, err
	}
	var p *store.PendingUser
	for _, x := range all {
		if x.Seq == seq {
			p = x
		}
	}
	if p == nil {
		return nil, fmt.Errorf("cancelling scheduled change #%d: %w", seq, store.ErrNotFound)
	}
	if err := st.(store.Directory).ApplyUsers(ctx, &store.UserBatch{DropPending: []int64{seq}}); err != nil {
		if errors.Is(err, store.ErrChanged) {
			return nil, fmt.Errorf("cancelling scheduled change #%d: already applied or cancelled: %w", seq, store.ErrNotFound)
		}
		return nil, fmt.Errorf("cancelling scheduled change #%d: %w", seq, err)
	}
	c := &Change{Action: ActionScheduleCancel, ID: p.UserID, Effective: p.EffectiveAt,
		After: &store.User{ID: p.UserID, DisplayName: p.DisplayName, Department: p.Department, Roles: p.Roles, Disabled: p.Disabled},
		Where: fmt.Sprintf("scheduled #%d %s", p.Seq, p.Source)}
	if err := record(o, o.now().UTC(), []*Change{c}); err != nil {
		return p, fmt.Errorf("cancelled scheduled change #%d, but %w", seq, err)
	}
	return p, nil
}

// RenderPending writes the scheduled changes as a table for a person,
// dates in loc.
func RenderPending(w io.Writer, list []*store.PendingUser, loc *time.Location) error {
	var b strings.Builder
	if len(list) == 0 {
		b.WriteString("予約された変更はありません (no scheduled changes)\n")
	}
	for _, p := range list {
		status := "有効 active"
		if p.Disabled {
			status = "無効 disabled"
		}
		fmt.Fprintf(&b, "#%d %s %s: 氏名 name: %s, 所属 department: %s, ロール roles: %s, 状態 status: %s [%s; %s]\n",
			p.Seq, p.EffectiveAt.In(loc).Format("2006-01-02 15:04"), p.UserID, show(p.DisplayName), show(p.Department),
			show(strings.Join(p.Roles, ";")), status, p.Source, p.CreatedBy)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
