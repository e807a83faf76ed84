package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

// Scheduler applies scheduled changes (rows with a future 発令日) when
// their moment comes. Every gateway replica may run one: a change is
// applied by exactly one of them, because removing it from the store is
// part of the same transaction and a second removal fails.
type Scheduler struct {
	st store.Store
	d  store.Directory
	o  options
}

// NewScheduler returns a scheduler for st, which must implement
// store.Directory. Options: WithClock, WithInterval, WithAudit,
// WithLogger, WithOperator.
func NewScheduler(st store.Store, opts ...Option) (*Scheduler, error) {
	d, ok := st.(store.Directory)
	if !ok {
		return nil, fmt.Errorf("starting the directory scheduler: store %T has no scheduled changes", st)
	}
	o := buildOptions(opts)
	if o.by == "directory" {
		o.by = "directory:scheduler"
	}
	return &Scheduler{st: st, d: d, o: o}, nil
}

// Run applies due changes at once and then every interval until ctx ends;
// it returns nil then. Errors are logged and retried on the next tick.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.interval)
	defer t.Stop()
	for {
		if res, err := s.RunDue(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.o.log.Warn("applying scheduled user changes", "err", err)
		} else if res.Scheduled > 0 {
			s.o.log.Info("applied scheduled user changes", "changes", res.Scheduled,
				"added", res.Added, "changed", res.Changed, "disabled", res.Disabled, "enabled", res.Enabled)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunDue applies every scheduled change whose moment has come, all in one
// transaction, and writes one audit record per change. Result.Scheduled
// counts the scheduled changes consumed; the other counts say what they
// did to users. store.ErrChanged means another replica applied them first
// or a user changed meanwhile; the next run sees the new state.
func (s *Scheduler) RunDue(ctx context.Context) (*Result, error) {
	now := s.o.now().UTC()
	due, err := s.d.ListPending(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("applying scheduled user changes: %w", err)
	}
	res := &Result{}
	if len(due) == 0 {
		return res, nil
	}
	users, err := s.st.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("applying scheduled user changes: %w", err)
	}
	byID := make(map[string]*store.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	// Each user's changes in effective order: audit each step, store the
	// net change once.
	var (
		steps []*Change
		order []string
		final = map[string]*Entry{}
		where = map[string]string{}
		cur   = map[string]*store.User{}
	)
	b := &store.UserBatch{}
	for _, p := range due {
		b.DropPending = append(b.DropPending, p.Seq)
		e := &Entry{ID: p.UserID, DisplayName: p.DisplayName, Department: p.Department, Roles: slices.Clone(p.Roles),
			Disabled: p.Disabled, Effective: p.EffectiveAt, Where: "scheduled #" + strconv.FormatInt(p.Seq, 10) + " " + p.Source}
		if _, seen := final[p.UserID]; !seen {
			order = append(order, p.UserID)
			cur[p.UserID] = byID[p.UserID]
		}
		final[p.UserID], where[p.UserID] = e, e.Where
		if c := changeFor(cur[p.UserID], e); c != nil {
			steps = append(steps, c)
			cur[p.UserID] = c.After
		}
		res.Scheduled++
	}
	var applied []*Change
	for _, id := range order {
		c := changeFor(byID[id], final[id])
		if c == nil {
			continue
		}
		if err := addToBatch(b, c, now, s.o.by, where[id]); err != nil {
			return nil, err
		}
		res.count(c.Action)
		applied = append(applied, c)
	}
	if err := s.d.ApplyUsers(ctx, b); err != nil {
		if errors.Is(err, store.ErrChanged) {
			return nil, fmt.Errorf("applying scheduled user changes: applied elsewhere or changed meanwhile; retrying: %w", err)
		}
		return nil, fmt.Errorf("applying scheduled user changes: %w", err)
	}
	res.Revoked = b.Revoke
	if len(applied) == 0 {
		steps = nil
	}
	if err := record(s.o, now, steps); err != nil {
		return res, fmt.Errorf("applied scheduled user changes, but %w", err)
	}
	return res, nil
}

// RunScheduler runs the scheduler that cfg describes (directory.check_interval)
// on st until ctx ends. A gateway starts it once:
//
//	go directory.RunScheduler(ctx, cfg, st, directory.WithAudit(trail), directory.WithLogger(log))
func RunScheduler(ctx context.Context, cfg *config.Config, st store.Store, opts ...Option) error {
	s, err := NewScheduler(st, append(Options(cfg), opts...)...)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
