package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/store"
)

// Audit actions, one per change.
const (
	ActionAdd      = "user_add"
	ActionChange   = "user_change"
	ActionDisable  = "user_disable"
	ActionEnable   = "user_enable"
	ActionSchedule = "user_schedule" // a change stored for its effective date
)

// Change is one user's change: Before (nil for an addition) → After.
type Change struct {
	Action string
	ID     string
	Before *store.User
	After  *store.User
	// Effective is when a scheduled change takes effect (zero: at once).
	Effective time.Time
	// Where the desired state came from ("jinji.csv:12", a DN, "scheduled #3").
	Where string
	// Missing: disabled because a full import or sync did not list the user.
	Missing bool
}

// Diff is one field that a change alters.
type Diff struct {
	Field  string // department, display_name, roles, status
	Label  string // "所属 department"
	Before string
	After  string
}

// Diffs lists what the change alters, field by field.
func (c *Change) Diffs() []Diff {
	var before store.User
	if c.Before != nil {
		before = *c.Before
	}
	a := c.After
	var out []Diff
	if before.DisplayName != a.DisplayName {
		out = append(out, Diff{"display_name", "氏名 name", before.DisplayName, a.DisplayName})
	}
	if before.Department != a.Department {
		out = append(out, Diff{"department", "所属 department", before.Department, a.Department})
	}
	if !slices.Equal(before.Roles, a.Roles) {
		out = append(out, Diff{"roles", "ロール roles", strings.Join(before.Roles, ";"), strings.Join(a.Roles, ";")})
	}
	if c.Before != nil && before.Disabled != a.Disabled {
		out = append(out, Diff{"status", "状態 status", statusLabel(before.Disabled), statusLabel(a.Disabled)})
	}
	return out
}

func statusLabel(disabled bool) string {
	if disabled {
		return "無効 disabled"
	}
	return "有効 active"
}

// Detail is the audit detail: every field before → after, and where the
// change came from.
func (c *Change) Detail() string {
	var parts []string
	if c.Action == ActionSchedule || c.Action == ActionScheduleCancel {
		parts = append(parts, "effective "+c.Effective.Format("2006-01-02T15:04:05Z07:00"))
	}
	if c.Action == ActionScheduleCancel {
		a := c.After
		parts = append(parts, fmt.Sprintf("cancelled: display_name: %s, department: %s, roles: %s, status: %s",
			show(a.DisplayName), show(a.Department), show(strings.Join(a.Roles, ";")), statusLabel(a.Disabled)))
	} else {
		for _, d := range c.Diffs() {
			parts = append(parts, fmt.Sprintf("%s: %s → %s", d.Field, show(d.Before), show(d.After)))
		}
	}
	if c.Missing {
		parts = append(parts, "not in the full import")
	}
	if c.Where != "" {
		parts = append(parts, "source: "+c.Where)
	}
	return strings.Join(parts, "; ")
}

func show(s string) string {
	if s == "" {
		return "(なし none)"
	}
	return s
}

// ChangeSet is a plan: what applying a source would change.
type ChangeSet struct {
	Source string
	Full   bool
	// At is when the plan was made; scheduled changes are those whose
	// effective date is after it.
	At time.Time
	// Changes take effect at once, in user id order.
	Changes []*Change
	// Scheduled are stored and applied on their effective dates.
	Scheduled []*Change
	Unchanged int
	// Kept are users a full import did not list but directory.keep names.
	Kept []string
}

// Count returns how many immediate changes have action.
func (cs *ChangeSet) Count(action string) int {
	n := 0
	for _, c := range cs.Changes {
		if c.Action == action {
			n++
		}
	}
	return n
}

// Empty reports whether applying would change nothing.
func (cs *ChangeSet) Empty() bool { return len(cs.Changes) == 0 && len(cs.Scheduled) == 0 }

// Auditor receives one admin record per applied change; *audit.Trail is one.
type Auditor interface {
	Append(*audit.Record) error
}

// Option changes Plan, Apply and the Scheduler.
type Option func(*options)

type options struct {
	now        func() time.Time
	keep       map[string]bool
	maxDisable int
	force      bool
	by         string
	audit      Auditor
	log        *slog.Logger
	interval   time.Duration
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now, keep: map[string]bool{}, maxDisable: DefaultMaxDisable, by: "directory",
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), interval: DefaultCheckInterval}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Defaults for the options.
const (
	DefaultMaxDisable    = 50
	DefaultCheckInterval = time.Minute
)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithKeep names users that a full import never disables.
func WithKeep(ids ...string) Option {
	return func(o *options) {
		for _, id := range ids {
			o.keep[id] = true
		}
	}
}

// WithMaxDisable refuses to apply a plan that disables more than n users
// (ErrTooManyDisabled); negative: no limit. Default 50.
func WithMaxDisable(n int) Option { return func(o *options) { o.maxDisable = n } }

// WithForce applies a plan even past the disable limit.
func WithForce() Option { return func(o *options) { o.force = true } }

// WithOperator names who applies the changes, for the audit trail and the
// revocations (default "directory").
func WithOperator(by string) Option { return func(o *options) { o.by = by } }

// WithAudit sends one admin record per applied change to a.
func WithAudit(a Auditor) Option { return func(o *options) { o.audit = a } }

// WithLogger sets the scheduler's logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithInterval sets how often the scheduler looks for due changes
// (default 1m).
func WithInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.interval = d
		}
	}
}

// Plan compares src with the users in st and returns what applying it
// would do. It changes nothing.
func Plan(ctx context.Context, st store.Store, src *Source, opts ...Option) (*ChangeSet, error) {
	o := buildOptions(opts)
	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("planning import of %s: %w", src.Name, err)
	}
	byID := make(map[string]*store.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	cs := &ChangeSet{Source: src.Name, Full: src.Full, At: o.now().UTC()}
	entries := slices.Clone(src.Entries)
	slices.SortStableFunc(entries, func(a, b *Entry) int { return strings.Compare(a.ID, b.ID) })
	listed := make(map[string]bool, len(entries))
	for _, e := range entries {
		if listed[e.ID] {
			return nil, fmt.Errorf("planning import of %s: user %s listed twice (%s)", src.Name, e.ID, e.Where)
		}
		listed[e.ID] = true
		cur := byID[e.ID]
		c := changeFor(cur, e)
		if !e.Effective.IsZero() && e.Effective.After(cs.At) {
			if c == nil { // same as now; still scheduled, the user may change before then
				c = &Change{ID: e.ID, Before: cur, After: desired(cur, e), Where: e.Where}
			}
			c.Action, c.Effective = ActionSchedule, e.Effective
			cs.Scheduled = append(cs.Scheduled, c)
			continue
		}
		if c == nil {
			cs.Unchanged++
			continue
		}
		cs.Changes = append(cs.Changes, c)
	}
	if src.Full {
		for _, u := range users {
			if listed[u.ID] || u.Disabled {
				continue
			}
			if o.keep[u.ID] {
				cs.Kept = append(cs.Kept, u.ID)
				continue
			}
			after := cloneUser(u)
			after.Disabled = true
			cs.Changes = append(cs.Changes, &Change{Action: ActionDisable, ID: u.ID, Before: u, After: after, Missing: true, Where: src.Name})
		}
		slices.SortStableFunc(cs.Changes, func(a, b *Change) int { return strings.Compare(a.ID, b.ID) })
	}
	return cs, nil
}

// desired is the user e describes, keeping cur's times.
func desired(cur *store.User, e *Entry) *store.User {
	u := &store.User{ID: e.ID, DisplayName: e.DisplayName, Department: e.Department, Roles: slices.Clone(e.Roles), Disabled: e.Disabled}
	if cur != nil {
		u.CreatedAt, u.UpdatedAt = cur.CreatedAt, cur.UpdatedAt
	}
	return u
}

// changeFor is what turns cur into e, or nil when nothing would change
// (or e disables a user that does not exist: nothing to do).
func changeFor(cur *store.User, e *Entry) *Change {
	after := desired(cur, e)
	c := &Change{ID: e.ID, Before: cur, After: after, Where: e.Where, Effective: e.Effective}
	switch {
	case cur == nil && e.Disabled:
		return nil
	case cur == nil:
		c.Action = ActionAdd
	case sameUser(cur, after):
		return nil
	case !cur.Disabled && after.Disabled:
		c.Action = ActionDisable
	case cur.Disabled && !after.Disabled:
		c.Action = ActionEnable
	default:
		c.Action = ActionChange
	}
	return c
}

func sameUser(a, b *store.User) bool {
	return a.DisplayName == b.DisplayName && a.Department == b.Department &&
		slices.Equal(normRoles(a.Roles), normRoles(b.Roles)) && a.Disabled == b.Disabled
}

func normRoles(r []string) []string {
	r = slices.Clone(r)
	slices.Sort(r)
	return slices.Compact(r)
}

func cloneUser(u *store.User) *store.User {
	c := *u
	c.Roles = slices.Clone(u.Roles)
	return &c
}

// Result is what Apply did.
type Result struct {
	Added, Changed, Disabled, Enabled, Scheduled int
	// Revoked are the revocations that ended disabled users' sessions.
	Revoked []*store.Revocation
}

// Apply makes the changes of cs in one store transaction (nothing is
// applied if any part fails, including when a user was changed by someone
// else since the plan: store.ErrChanged), ends the sessions of disabled
// users on every gateway, stores scheduled changes, and then writes one
// audit record per change. st must implement store.Directory.
func Apply(ctx context.Context, st store.Store, cs *ChangeSet, opts ...Option) (*Result, error) {
	o := buildOptions(opts)
	d, ok := st.(store.Directory)
	if !ok {
		return nil, fmt.Errorf("applying import of %s: store %T cannot apply changes atomically", cs.Source, st)
	}
	res := &Result{}
	if n := cs.Count(ActionDisable); o.maxDisable >= 0 && n > o.maxDisable && !o.force {
		return nil, fmt.Errorf("applying import of %s: %d users would be disabled, more than the limit %d (--force で実行できます; check the file or raise directory.max_disable): %w",
			cs.Source, n, o.maxDisable, ErrTooManyDisabled)
	}
	now := o.now().UTC()
	b := &store.UserBatch{}
	for _, c := range cs.Changes {
		if err := addToBatch(b, c, now, o.by, cs.Source); err != nil {
			return nil, err
		}
		res.count(c.Action)
	}
	for _, c := range cs.Scheduled {
		b.AddPending = append(b.AddPending, &store.PendingUser{
			UserID: c.ID, EffectiveAt: c.Effective.UTC(), DisplayName: c.After.DisplayName, Department: c.After.Department,
			Roles: slices.Clone(c.After.Roles), Disabled: c.After.Disabled, Source: c.Where, CreatedBy: o.by, CreatedAt: now,
		})
		res.Scheduled++
	}
	if len(b.Create)+len(b.Update)+len(b.AddPending) == 0 {
		return res, nil
	}
	if err := d.ApplyUsers(ctx, b); err != nil {
		if errors.Is(err, store.ErrChanged) || errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("applying import of %s: users changed since the plan was made; nothing was applied, plan again (計画後に利用者が変更されました。何も反映していません。もう一度実行してください): %w", cs.Source, err)
		}
		return nil, fmt.Errorf("applying import of %s: nothing was applied: %w", cs.Source, err)
	}
	res.Revoked = b.Revoke
	if err := record(o, now, append(slices.Clone(cs.Changes), cs.Scheduled...)); err != nil {
		return res, fmt.Errorf("applied import of %s, but %w", cs.Source, err)
	}
	return res, nil
}

func (r *Result) count(action string) {
	switch action {
	case ActionAdd:
		r.Added++
	case ActionChange:
		r.Changed++
	case ActionDisable:
		r.Disabled++
	case ActionEnable:
		r.Enabled++
	}
}

// addToBatch adds one immediate change to b.
func addToBatch(b *store.UserBatch, c *Change, now time.Time, by, source string) error {
	after := cloneUser(c.After)
	after.UpdatedAt = now
	switch c.Action {
	case ActionAdd:
		after.CreatedAt = now
		b.Create = append(b.Create, after)
	case ActionChange, ActionEnable, ActionDisable:
		if c.Before == nil {
			return fmt.Errorf("applying %s of %s: no current user", c.Action, c.ID)
		}
		after.CreatedAt = c.Before.CreatedAt
		b.Update = append(b.Update, store.UserUpdate{User: after, Was: c.Before.UpdatedAt})
		if c.Action == ActionDisable {
			b.Revoke = append(b.Revoke, &store.Revocation{Kind: store.RevokeUser, Subject: c.ID, At: now, By: by,
				Reason: "人事異動による無効化 (disabled by directory import " + source + ")"})
		}
	default:
		return fmt.Errorf("applying change of %s: unknown action %q", c.ID, c.Action)
	}
	return nil
}

// record writes one admin audit record per change.
func record(o options, now time.Time, changes []*Change) error {
	if o.audit == nil {
		return nil
	}
	var errs []error
	for _, c := range changes {
		rec := &audit.Record{Time: now, Event: audit.EventAdmin, User: o.by, Action: c.Action, Target: c.ID,
			Detail: c.Detail(), Decision: audit.DecisionAllow, Enforced: true, Rule: "directory"}
		if err := o.audit.Append(rec); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", c.Action, c.ID, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("writing the audit records failed: %w", errors.Join(errs...))
	}
	return nil
}
