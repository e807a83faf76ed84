package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

func openPostgres(t *testing.T, dsn string) *store.Postgres {
	t.Helper()
	p, err := store.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	return p
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := store.Open(t.Context(), "postgres", storetest.PostgresDSN(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return st
	})
}

// Replicas starting together all migrate without error and each
// migration is applied once.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const n = 4
	var (
		wg     sync.WaitGroup
		stores [n]*store.Postgres
		errs   [n]error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = store.OpenPostgres(context.Background(), dsn)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, distinct, maxV int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version), max(version) FROM schema_migrations`).Scan(&rows, &distinct, &maxV); err != nil {
		t.Fatal(err)
	}
	if rows != distinct || rows != maxV || rows < 1 {
		t.Errorf("schema_migrations has %d rows, %d versions, max %d; want each migration once", rows, distinct, maxV)
	}
	for i, s := range stores {
		v, err := s.SchemaVersion(t.Context())
		if err != nil || v != maxV {
			t.Errorf("store %d: SchemaVersion = %d, %v; want %d", i, v, err, maxV)
		}
		if s.Schema() != stores[0].Schema() || s.Schema() == "public" {
			t.Errorf("store %d: schema %q, want the test's own schema", i, s.Schema())
		}
	}
}

// A revocation added through one replica reaches another replica's
// subscription, well within the one second the design allows.
func TestPostgresNotifyAcrossReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer a.Close()
	defer b.Close()
	sub, err := b.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	const rounds = 20
	var lat []time.Duration
	for i := range rounds {
		r := &store.Revocation{Kind: store.RevokeUser, Subject: "tanaka", By: "admin"}
		start := time.Now()
		if err := a.AddRevocation(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(time.Second)
	wait:
		for {
			select {
			case c := <-sub:
				if c.Kind == store.ChangeRevocation && c.Seq == r.Seq {
					lat = append(lat, time.Since(start))
					break wait
				}
			case <-deadline:
				t.Fatalf("round %d: revocation %d not received by the other replica within 1s", i, r.Seq)
			}
		}
		// The receiver can read what it was told about.
		got, err := b.RevocationsSince(t.Context(), r.Seq-1)
		if err != nil || len(got) != 1 || got[0].Seq != r.Seq {
			t.Fatalf("round %d: RevocationsSince(%d) on the receiver = %v, %v", i, r.Seq-1, got, err)
		}
	}
	slices.Sort(lat)
	t.Logf("revocation notification latency over %d rounds (AddRevocation start to receipt on the other replica): min %v, median %v, max %v",
		rounds, lat[0], lat[len(lat)/2], lat[len(lat)-1])

	// Other kinds arrive too, including a published policy change.
	if err := a.UpdateUser(t.Context(), &store.User{ID: "nobody"}); err == nil {
		t.Fatal("UpdateUser of unknown user succeeded")
	}
	if err := a.Publish(t.Context(), store.Change{Kind: store.ChangePolicy}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-sub:
		// A failed (rolled back) UpdateUser sends nothing, so the next
		// change is the policy one.
		if c.Kind != store.ChangePolicy {
			t.Errorf("got %+v, want the policy change", c)
		}
	case <-time.After(time.Second):
		t.Fatal("policy change not received within 1s")
	}
}

// When the listener's connection is killed the store reconnects, tells
// subscribers to resync, and delivers later changes again.
func TestPostgresListenerReconnect(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	p := openPostgres(t, dsn)
	defer p.Close()
	sub, err := p.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'sekisho-listener' AND query = $1`,
		"LISTEN "+pgx.Identifier{"sekisho." + p.Schema()}.Sanitize()).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener backends, want 1", killed)
	}
	expect := func(want store.Change) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case c := <-sub:
				if c == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %+v within 10s", want)
			}
		}
	}
	expect(store.Change{Kind: store.ChangeResync})
	r := &store.Revocation{Kind: store.RevokeAll}
	if err := p.AddRevocation(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	expect(store.Change{Kind: store.ChangeRevocation, Seq: r.Seq})
}

// Long silence on the listener connection is survived: the heartbeat's
// timeout leaves the connection usable, the ping succeeds, nothing is
// reported as lost, and the next change arrives.
func TestPostgresListenerHeartbeat(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	p, err := store.OpenPostgres(t.Context(), dsn, store.WithHeartbeat(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub, err := p.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // about 15 heartbeats
	r := &store.Revocation{Kind: store.RevokeDevice, Subject: "PC-0001"}
	if err := p.AddRevocation(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-sub:
		if c != (store.Change{Kind: store.ChangeRevocation, Seq: r.Seq}) {
			t.Errorf("first change after silence = %+v, want the revocation (no resync)", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("revocation not received after silence")
	}
}
