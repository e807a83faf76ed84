package store

import (
	"context"
	"fmt"
	"time"
)

// Option changes how a store is opened.
type Option func(*options)

type options struct {
	now       func() time.Time
	heartbeat time.Duration
}

// WithClock sets the clock used for times the caller left zero (a user's
// CreatedAt, a revocation's At). The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithHeartbeat sets how long the PostgreSQL change listener waits in
// silence before it pings its connection; a failed ping replaces the
// connection (and subscribers get ChangeResync). The default is 30s. The
// SQLite store ignores it.
func WithHeartbeat(d time.Duration) Option {
	return func(o *options) { o.heartbeat = d }
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now, heartbeat: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Open opens the store for driver ("sqlite", the default, or "postgres")
// and applies pending migrations. For sqlite dsn is a file path (default
// data/sekisho.db); for postgres it is a connection string or URL.
func Open(ctx context.Context, driver, dsn string, opts ...Option) (Store, error) {
	switch driver {
	case "", "sqlite":
		return OpenSQLite(ctx, dsn, opts...)
	case "postgres", "postgresql":
		if dsn == "" {
			return nil, fmt.Errorf("store driver postgres: empty dsn")
		}
		return OpenPostgres(ctx, dsn, opts...)
	default:
		return nil, fmt.Errorf("store driver %q: unknown (want sqlite or postgres)", driver)
	}
}
