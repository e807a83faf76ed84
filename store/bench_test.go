package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

// The request path reads a user (through a short cache) and sometimes
// touches a session; logins write; revocations are rare but must be quick.
func benchStore(b *testing.B, st store.Store) {
	ctx := context.Background()
	if err := st.CreateUser(ctx, &store.User{ID: "tanaka", Roles: []string{"staff"}}); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateSession(ctx, &store.Session{ID: "s", UserID: "tanaka"}); err != nil {
		b.Fatal(err)
	}
	b.Run("GetUser", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := st.GetUser(ctx, "tanaka"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("TouchSession", func(b *testing.B) {
		now := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := st.TouchSession(ctx, "s", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	var seq int // invitation hashes stay unique across the sub-benchmark's runs
	b.Run("CreateAndConsumeInvitation", func(b *testing.B) {
		now := time.Now()
		for range b.N {
			seq++
			h := []byte(fmt.Sprintf("bench-%d", seq))
			if err := st.CreateInvitation(ctx, &store.Invitation{TokenHash: h, UserID: "tanaka", ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			if _, err := st.ConsumeInvitation(ctx, h, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AddRevocation", func(b *testing.B) {
		for range b.N {
			if err := st.AddRevocation(ctx, &store.Revocation{Kind: store.RevokeSession, Subject: "s"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSQLite(b *testing.B) {
	st, err := store.OpenSQLite(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchStore(b, st)
}

func BenchmarkPostgres(b *testing.B) {
	st, err := store.OpenPostgres(b.Context(), storetest.PostgresDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchStore(b, st)
}
