package store

import (
	"context"
	"fmt"
)

// Open opens the store for driver ("sqlite", the default, or "postgres")
// and applies pending migrations.
func Open(ctx context.Context, driver, dsn string) (Store, error) {
	return nil, fmt.Errorf("store driver %q: not implemented yet", driver)
}
