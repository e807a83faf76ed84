package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sekisho/sekisho/store"
)

// jst is where the suite's input times live, so that a store that does not
// convert to UTC is caught.
var jst = time.FixedZone("JST", 9*60*60)

// base is the suite's reference time: JST, with nanoseconds that a store
// truncates to [store.Precision].
var base = time.Date(2026, 4, 1, 9, 30, 15, 123456789, jst)

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// norm is t as a store gives it back.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(store.Precision)
}

var diffOpts = []cmp.Option{cmpopts.EquateEmpty()}

// Run runs the conformance suite. open must return a new, empty store for
// each call, and may be called from parallel subtests; Run closes the
// store, possibly twice (Close must be idempotent).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testUsers},
		{"UserDefaults", testUserDefaults},
		{"Credentials", testCredentials},
		{"Devices", testDevices},
		{"ConcurrentTouchDevice", testConcurrentTouchDevice},
		{"Invitations", testInvitations},
		{"InvitationExpiry", testInvitationExpiry},
		{"ConcurrentConsume", testConcurrentConsume},
		{"Challenges", testChallenges},
		{"Sessions", testSessions},
		{"Revocations", testRevocations},
		{"ConcurrentRevocations", testConcurrentRevocations},
		{"Keys", testKeys},
		{"TimesUTC", testTimesUTC},
		{"Notifier", testNotifier},
		{"Prune", testPrune},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// wantErr fails unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

// must fails the test now on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, diffOpts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func testUsers(t *testing.T, s store.Store) {
	u := &store.User{ID: "tanaka", DisplayName: "田中 太郎", Department: "税務課",
		Roles: []string{"staff", "tax"}, CreatedAt: at(0), UpdatedAt: at(0)}
	must(t, "CreateUser", s.CreateUser(ctx(t), u))
	wantErr(t, "CreateUser again", s.CreateUser(ctx(t), &store.User{ID: "tanaka"}), store.ErrExists)
	must(t, "CreateUser suzuki", s.CreateUser(ctx(t), &store.User{ID: "suzuki", CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}))

	got, err := s.GetUser(ctx(t), "tanaka")
	must(t, "GetUser", err)
	want := &store.User{ID: "tanaka", DisplayName: "田中 太郎", Department: "税務課",
		Roles: []string{"staff", "tax"}, CreatedAt: norm(at(0)), UpdatedAt: norm(at(0))}
	diff(t, "GetUser", want, got)

	// A personnel transfer: new department and roles, disabled later.
	upd := &store.User{ID: "tanaka", DisplayName: "田中 太郎", Department: "住民課",
		Roles: []string{"staff"}, Disabled: true, UpdatedAt: at(time.Hour)}
	must(t, "UpdateUser", s.UpdateUser(ctx(t), upd))
	got, err = s.GetUser(ctx(t), "tanaka")
	must(t, "GetUser after update", err)
	want = &store.User{ID: "tanaka", DisplayName: "田中 太郎", Department: "住民課",
		Roles: []string{"staff"}, Disabled: true, CreatedAt: norm(at(0)), UpdatedAt: norm(at(time.Hour))}
	diff(t, "GetUser after update", want, got)

	wantErr(t, "UpdateUser missing", s.UpdateUser(ctx(t), &store.User{ID: "nobody"}), store.ErrNotFound)
	_, err = s.GetUser(ctx(t), "nobody")
	wantErr(t, "GetUser missing", err, store.ErrNotFound)

	list, err := s.ListUsers(ctx(t))
	must(t, "ListUsers", err)
	var ids []string
	for _, u := range list {
		ids = append(ids, u.ID)
	}
	diff(t, "ListUsers ids (ordered by id)", []string{"suzuki", "tanaka"}, ids)

	// Mutating what the store returned must not change the store.
	got.Roles[0] = "admin"
	again, err := s.GetUser(ctx(t), "tanaka")
	must(t, "GetUser again", err)
	diff(t, "roles after caller mutation", []string{"staff"}, again.Roles)
}

func testUserDefaults(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	u := &store.User{ID: "sato"}
	must(t, "CreateUser", s.CreateUser(ctx(t), u))
	got, err := s.GetUser(ctx(t), "sato")
	must(t, "GetUser", err)
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("zero CreatedAt became %v, want about now", got.CreatedAt)
	}
	if !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("UpdatedAt %v, want CreatedAt %v", got.UpdatedAt, got.CreatedAt)
	}
	if got.Roles != nil && len(got.Roles) != 0 {
		t.Errorf("Roles = %v, want empty", got.Roles)
	}
	if got.Disabled {
		t.Errorf("Disabled = true, want false")
	}
}

func testCredentials(t *testing.T, s store.Store) {
	c1 := &store.Credential{ID: []byte{1, 2, 3}, UserID: "tanaka", Name: "職場のPC",
		PublicKey: []byte("pk-1"), AttestationType: "none", AAGUID: bytes.Repeat([]byte{0xAA}, 16),
		SignCount: 5, Transports: []string{"internal", "hybrid"}, UserPresent: true, UserVerified: true,
		BackupEligible: true, BackupState: false, CreatedAt: at(0)}
	wantErr(t, "AddCredential for unknown user", s.AddCredential(ctx(t), c1), store.ErrNotFound)
	must(t, "CreateUser", s.CreateUser(ctx(t), &store.User{ID: "tanaka"}))
	must(t, "CreateUser other", s.CreateUser(ctx(t), &store.User{ID: "suzuki"}))
	must(t, "AddCredential", s.AddCredential(ctx(t), c1))
	wantErr(t, "AddCredential again", s.AddCredential(ctx(t), &store.Credential{ID: []byte{1, 2, 3}, UserID: "suzuki", PublicKey: []byte("x")}), store.ErrExists)
	c2 := &store.Credential{ID: []byte{9}, UserID: "tanaka", Name: "スマホ", PublicKey: []byte("pk-2"), CreatedAt: at(time.Minute)}
	must(t, "AddCredential 2", s.AddCredential(ctx(t), c2))
	must(t, "AddCredential other user", s.AddCredential(ctx(t), &store.Credential{ID: []byte{7}, UserID: "suzuki", PublicKey: []byte("pk-3"), CreatedAt: at(0)}))

	got, err := s.GetCredential(ctx(t), []byte{1, 2, 3})
	must(t, "GetCredential", err)
	want := *c1
	want.CreatedAt = norm(c1.CreatedAt)
	diff(t, "GetCredential", &want, got)
	_, err = s.GetCredential(ctx(t), []byte{4, 4})
	wantErr(t, "GetCredential missing", err, store.ErrNotFound)

	list, err := s.ListCredentials(ctx(t), "tanaka")
	must(t, "ListCredentials", err)
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	diff(t, "ListCredentials names (oldest first)", []string{"職場のPC", "スマホ"}, names)
	list, err = s.ListCredentials(ctx(t), "nobody")
	must(t, "ListCredentials nobody", err)
	if len(list) != 0 {
		t.Errorf("ListCredentials(nobody) = %d credentials, want 0", len(list))
	}

	use := &store.Credential{ID: []byte{1, 2, 3}, SignCount: 9, UserPresent: true, UserVerified: false,
		BackupEligible: true, BackupState: true, CloneWarning: true, LastUsedAt: at(time.Hour)}
	must(t, "UpdateCredentialUse", s.UpdateCredentialUse(ctx(t), use))
	got, err = s.GetCredential(ctx(t), []byte{1, 2, 3})
	must(t, "GetCredential after use", err)
	want.SignCount, want.UserVerified, want.BackupState, want.CloneWarning = 9, false, true, true
	want.LastUsedAt = norm(at(time.Hour))
	diff(t, "GetCredential after use", &want, got)
	wantErr(t, "UpdateCredentialUse missing", s.UpdateCredentialUse(ctx(t), &store.Credential{ID: []byte{4}}), store.ErrNotFound)

	// Summaries: tanaka has two (one with a clone warning, used an hour
	// in), suzuki one never used; users without passkeys are absent.
	must(t, "CreateUser without passkey", s.CreateUser(ctx(t), &store.User{ID: "sato"}))
	sums, err := s.CredentialSummaries(ctx(t))
	must(t, "CredentialSummaries", err)
	diff(t, "CredentialSummaries", map[string]store.CredentialSummary{
		"tanaka": {Count: 2, CloneWarning: true, LastUsedAt: norm(at(time.Hour))},
		"suzuki": {Count: 1},
	}, sums)

	// The top of the uint32 counter survives.
	must(t, "UpdateCredentialUse max", s.UpdateCredentialUse(ctx(t), &store.Credential{ID: []byte{9}, SignCount: 1<<32 - 1, LastUsedAt: at(0)}))
	got, err = s.GetCredential(ctx(t), []byte{9})
	must(t, "GetCredential max", err)
	if got.SignCount != 1<<32-1 {
		t.Errorf("SignCount = %d, want %d", got.SignCount, uint32(1<<32-1))
	}

	must(t, "RenameCredential", s.RenameCredential(ctx(t), "tanaka", []byte{9}, "iPhone"))
	got, err = s.GetCredential(ctx(t), []byte{9})
	must(t, "GetCredential renamed", err)
	if got.Name != "iPhone" {
		t.Errorf("Name = %q, want iPhone", got.Name)
	}
	wantErr(t, "RenameCredential of another user's", s.RenameCredential(ctx(t), "suzuki", []byte{9}, "mine"), store.ErrNotFound)
	wantErr(t, "RenameCredential missing", s.RenameCredential(ctx(t), "tanaka", []byte{4}, "x"), store.ErrNotFound)

	wantErr(t, "DeleteCredential of another user's", s.DeleteCredential(ctx(t), "suzuki", []byte{9}), store.ErrNotFound)
	must(t, "DeleteCredential", s.DeleteCredential(ctx(t), "tanaka", []byte{9}))
	_, err = s.GetCredential(ctx(t), []byte{9})
	wantErr(t, "GetCredential deleted", err, store.ErrNotFound)
	wantErr(t, "DeleteCredential again", s.DeleteCredential(ctx(t), "tanaka", []byte{9}), store.ErrNotFound)

	// Mutating returned bytes must not change the store.
	got, err = s.GetCredential(ctx(t), []byte{1, 2, 3})
	must(t, "GetCredential", err)
	got.PublicKey[0] = 'X'
	again, err := s.GetCredential(ctx(t), []byte{1, 2, 3})
	must(t, "GetCredential again", err)
	diff(t, "public key after caller mutation", []byte("pk-1"), again.PublicKey)
}

func testDevices(t *testing.T, s store.Store) {
	d := &store.Device{ID: "PC-0001", Owner: "tanaka", Department: "税務課",
		Fingerprints: []string{"aa"}, Status: store.DeviceActive, FirstSeen: at(0), LastSeen: at(0)}
	must(t, "UpsertDevice", s.UpsertDevice(ctx(t), d))
	got, err := s.GetDevice(ctx(t), "PC-0001")
	must(t, "GetDevice", err)
	want := &store.Device{ID: "PC-0001", Owner: "tanaka", Department: "税務課",
		Fingerprints: []string{"aa"}, Status: store.DeviceActive, FirstSeen: norm(at(0)), LastSeen: norm(at(0))}
	diff(t, "GetDevice", want, got)
	_, err = s.GetDevice(ctx(t), "PC-9999")
	wantErr(t, "GetDevice missing", err, store.ErrNotFound)

	must(t, "TouchDevice new fp", s.TouchDevice(ctx(t), "PC-0001", "bb", at(time.Hour)))
	must(t, "TouchDevice same fp", s.TouchDevice(ctx(t), "PC-0001", "bb", at(2*time.Hour)))
	must(t, "TouchDevice earlier", s.TouchDevice(ctx(t), "PC-0001", "aa", at(time.Minute)))
	got, err = s.GetDevice(ctx(t), "PC-0001")
	must(t, "GetDevice after touch", err)
	want.Fingerprints = []string{"aa", "bb"}
	want.LastSeen = norm(at(2 * time.Hour))
	diff(t, "GetDevice after touch", want, got)
	wantErr(t, "TouchDevice missing", s.TouchDevice(ctx(t), "PC-9999", "cc", at(0)), store.ErrNotFound)

	// Revoke by upsert: FirstSeen stays, the rest is replaced.
	must(t, "UpsertDevice revoke", s.UpsertDevice(ctx(t), &store.Device{ID: "PC-0001", Owner: "tanaka",
		Fingerprints: got.Fingerprints, Status: store.DeviceRevoked, Reason: "紛失", FirstSeen: at(5 * time.Hour), LastSeen: got.LastSeen}))
	got, err = s.GetDevice(ctx(t), "PC-0001")
	must(t, "GetDevice revoked", err)
	want.Department, want.Status, want.Reason = "", store.DeviceRevoked, "紛失"
	diff(t, "GetDevice revoked", want, got)

	// A device registered ahead of being seen: empty status means active.
	must(t, "UpsertDevice bare", s.UpsertDevice(ctx(t), &store.Device{ID: "PC-0000"}))
	got, err = s.GetDevice(ctx(t), "PC-0000")
	must(t, "GetDevice bare", err)
	diff(t, "GetDevice bare", &store.Device{ID: "PC-0000", Status: store.DeviceActive}, got)
	must(t, "TouchDevice bare", s.TouchDevice(ctx(t), "PC-0000", "cc", at(time.Hour)))
	got, err = s.GetDevice(ctx(t), "PC-0000")
	must(t, "GetDevice bare touched", err)
	diff(t, "GetDevice bare touched", &store.Device{ID: "PC-0000", Status: store.DeviceActive,
		Fingerprints: []string{"cc"}, FirstSeen: norm(at(time.Hour)), LastSeen: norm(at(time.Hour))}, got)

	list, err := s.ListDevices(ctx(t))
	must(t, "ListDevices", err)
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	diff(t, "ListDevices ids", []string{"PC-0000", "PC-0001"}, ids)
}

func testConcurrentTouchDevice(t *testing.T, s store.Store) {
	must(t, "UpsertDevice", s.UpsertDevice(ctx(t), &store.Device{ID: "PC-0001"}))
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.TouchDevice(context.Background(), "PC-0001", fmt.Sprintf("fp-%02d", i), at(time.Duration(i)*time.Minute)); err != nil {
				t.Errorf("TouchDevice %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got, err := s.GetDevice(ctx(t), "PC-0001")
	must(t, "GetDevice", err)
	if len(got.Fingerprints) != n {
		t.Errorf("after %d concurrent touches with distinct fingerprints, %d kept: %v", n, len(got.Fingerprints), got.Fingerprints)
	}
	if !got.LastSeen.Equal(norm(at((n - 1) * time.Minute))) {
		t.Errorf("LastSeen = %v, want the latest touch %v", got.LastSeen, norm(at((n-1)*time.Minute)))
	}
	if !got.FirstSeen.IsZero() && got.FirstSeen.After(got.LastSeen) {
		t.Errorf("FirstSeen %v after LastSeen %v", got.FirstSeen, got.LastSeen)
	}
}

func testInvitations(t *testing.T, s store.Store) {
	h := []byte("hash-1")
	inv := &store.Invitation{TokenHash: h, UserID: "tanaka", CreatedBy: "admin", CreatedAt: at(0), ExpiresAt: at(24 * time.Hour)}
	must(t, "CreateInvitation", s.CreateInvitation(ctx(t), inv))
	wantErr(t, "CreateInvitation again", s.CreateInvitation(ctx(t), &store.Invitation{TokenHash: h, UserID: "x", ExpiresAt: at(time.Hour)}), store.ErrExists)

	want := &store.Invitation{TokenHash: h, UserID: "tanaka", CreatedBy: "admin", CreatedAt: norm(at(0)), ExpiresAt: norm(at(24 * time.Hour))}
	got, err := s.PeekInvitation(ctx(t), h, at(time.Hour))
	must(t, "PeekInvitation", err)
	diff(t, "PeekInvitation", want, got)
	got, err = s.PeekInvitation(ctx(t), h, at(time.Hour))
	must(t, "PeekInvitation twice (does not consume)", err)

	_, err = s.PeekInvitation(ctx(t), []byte("nope"), at(0))
	wantErr(t, "PeekInvitation unknown", err, store.ErrNotFound)
	_, err = s.ConsumeInvitation(ctx(t), []byte("nope"), at(0))
	wantErr(t, "ConsumeInvitation unknown", err, store.ErrNotFound)

	got, err = s.ConsumeInvitation(ctx(t), h, at(2*time.Hour))
	must(t, "ConsumeInvitation", err)
	want.UsedAt = norm(at(2 * time.Hour))
	diff(t, "ConsumeInvitation", want, got)

	_, err = s.ConsumeInvitation(ctx(t), h, at(3*time.Hour))
	wantErr(t, "ConsumeInvitation again", err, store.ErrInvitationUsed)
	_, err = s.PeekInvitation(ctx(t), h, at(3*time.Hour))
	wantErr(t, "PeekInvitation used", err, store.ErrInvitationUsed)

	if err := s.CreateInvitation(ctx(t), &store.Invitation{TokenHash: []byte("h2"), UserID: "x"}); err == nil {
		t.Errorf("CreateInvitation without expiry: no error")
	}
}

func testInvitationExpiry(t *testing.T, s store.Store) {
	h := []byte("hash-exp")
	must(t, "CreateInvitation", s.CreateInvitation(ctx(t), &store.Invitation{TokenHash: h, UserID: "tanaka", CreatedAt: at(0), ExpiresAt: at(time.Hour)}))
	_, err := s.PeekInvitation(ctx(t), h, at(time.Hour-time.Millisecond))
	must(t, "PeekInvitation just before expiry", err)
	// Expiry is exclusive: at ExpiresAt the invitation is no longer valid.
	_, err = s.PeekInvitation(ctx(t), h, at(time.Hour))
	wantErr(t, "PeekInvitation at expiry", err, store.ErrInvitationUsed)
	_, err = s.ConsumeInvitation(ctx(t), h, at(time.Hour))
	wantErr(t, "ConsumeInvitation at expiry", err, store.ErrInvitationUsed)
	_, err = s.ConsumeInvitation(ctx(t), h, at(2*time.Hour))
	wantErr(t, "ConsumeInvitation after expiry", err, store.ErrInvitationUsed)
	// The failed attempts did not mark it used: still consumable earlier.
	got, err := s.ConsumeInvitation(ctx(t), h, at(time.Minute))
	must(t, "ConsumeInvitation before expiry", err)
	if !got.UsedAt.Equal(norm(at(time.Minute))) {
		t.Errorf("UsedAt = %v, want %v", got.UsedAt, norm(at(time.Minute)))
	}
}

// testChallenges: a challenge is consumed once; of concurrent callers
// exactly one wins.
func testChallenges(t *testing.T, s store.Store) {
	must(t, "ConsumeChallenge", s.ConsumeChallenge(ctx(t), []byte("c1"), at(time.Hour)))
	wantErr(t, "ConsumeChallenge again", s.ConsumeChallenge(ctx(t), []byte("c1"), at(time.Hour)), store.ErrChallengeUsed)
	must(t, "ConsumeChallenge other", s.ConsumeChallenge(ctx(t), []byte("c2"), at(time.Hour)))
	race(t, "concurrent ConsumeChallenge", store.ErrChallengeUsed, func() error {
		return s.ConsumeChallenge(context.Background(), []byte("race"), at(time.Hour))
	})
}

func testConcurrentConsume(t *testing.T, s store.Store) {
	for r := range 3 {
		h := []byte(fmt.Sprintf("race-%d", r))
		must(t, "CreateInvitation", s.CreateInvitation(ctx(t), &store.Invitation{TokenHash: h, UserID: "tanaka", CreatedAt: at(0), ExpiresAt: at(time.Hour)}))
		race(t, fmt.Sprintf("round %d of concurrent ConsumeInvitation", r), store.ErrInvitationUsed, func() error {
			_, err := s.ConsumeInvitation(context.Background(), h, at(time.Minute))
			return err
		})
	}
}

// race runs consume on 12 goroutines released at once and expects exactly
// one to succeed and every other to fail with lost.
func race(t *testing.T, what string, lost error, consume func() error) {
	t.Helper()
	const workers = 12
	var (
		wg         sync.WaitGroup
		start      = make(chan struct{})
		mu         sync.Mutex
		wins, used int
		otherErrs  []error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := consume()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, lost):
				used++
			default:
				otherErrs = append(otherErrs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 || used != workers-1 || len(otherErrs) > 0 {
		t.Errorf("%s: %d winners, %d %v, other errors %v; want 1, %d, none", what, wins, used, lost, otherErrs, workers-1)
	}
}

func testSessions(t *testing.T, s store.Store) {
	s1 := &store.Session{ID: "sess-1", UserID: "tanaka", Device: "PC-0001", CertFP: "aa",
		AMR: []string{"hwk", "user", "mtls"}, IP: "192.0.2.10", CreatedAt: at(0), ExpiresAt: at(8 * time.Hour), LastSeen: at(0)}
	must(t, "CreateSession", s.CreateSession(ctx(t), s1))
	wantErr(t, "CreateSession again", s.CreateSession(ctx(t), &store.Session{ID: "sess-1", UserID: "x"}), store.ErrExists)
	must(t, "CreateSession 2", s.CreateSession(ctx(t), &store.Session{ID: "sess-2", UserID: "tanaka", CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)}))
	must(t, "CreateSession other", s.CreateSession(ctx(t), &store.Session{ID: "sess-3", UserID: "suzuki", CreatedAt: at(-time.Minute), ExpiresAt: at(time.Hour)}))

	got, err := s.GetSession(ctx(t), "sess-1")
	must(t, "GetSession", err)
	want := &store.Session{ID: "sess-1", UserID: "tanaka", Device: "PC-0001", CertFP: "aa",
		AMR: []string{"hwk", "user", "mtls"}, IP: "192.0.2.10", CreatedAt: norm(at(0)), ExpiresAt: norm(at(8 * time.Hour)), LastSeen: norm(at(0))}
	diff(t, "GetSession", want, got)
	_, err = s.GetSession(ctx(t), "nope")
	wantErr(t, "GetSession missing", err, store.ErrNotFound)

	ids := func(l []*store.Session) []string {
		var out []string
		for _, s := range l {
			out = append(out, s.ID)
		}
		return out
	}
	list, err := s.ListSessions(ctx(t), "tanaka")
	must(t, "ListSessions", err)
	diff(t, "ListSessions(tanaka)", []string{"sess-1", "sess-2"}, ids(list))
	list, err = s.ListSessions(ctx(t), "")
	must(t, "ListSessions all", err)
	diff(t, "ListSessions(all, oldest first)", []string{"sess-3", "sess-1", "sess-2"}, ids(list))

	must(t, "TouchSession", s.TouchSession(ctx(t), "sess-1", at(30*time.Minute)))
	got, err = s.GetSession(ctx(t), "sess-1")
	must(t, "GetSession touched", err)
	want.LastSeen = norm(at(30 * time.Minute))
	diff(t, "GetSession touched", want, got)
	wantErr(t, "TouchSession missing", s.TouchSession(ctx(t), "nope", at(0)), store.ErrNotFound)

	must(t, "DeleteSession", s.DeleteSession(ctx(t), "sess-1"))
	_, err = s.GetSession(ctx(t), "sess-1")
	wantErr(t, "GetSession deleted", err, store.ErrNotFound)
	wantErr(t, "DeleteSession again", s.DeleteSession(ctx(t), "sess-1"), store.ErrNotFound)
}

func testRevocations(t *testing.T, s store.Store) {
	list, err := s.RevocationsSince(ctx(t), 0)
	must(t, "RevocationsSince empty", err)
	if len(list) != 0 {
		t.Fatalf("new store has %d revocations", len(list))
	}
	in := []*store.Revocation{
		{Kind: store.RevokeSession, Subject: "sess-1", At: at(0), By: "admin", Reason: "紛失"},
		{Kind: store.RevokeUser, Subject: "tanaka", At: at(time.Minute), By: "admin", Reason: "異動"},
		{Kind: store.RevokeDevice, Subject: "PC-0001", At: at(2 * time.Minute), By: "admin"},
		{Kind: store.RevokeAll, At: at(3 * time.Minute), By: "admin", Reason: "鍵の漏えい"},
	}
	var last int64
	for i, r := range in {
		must(t, "AddRevocation", s.AddRevocation(ctx(t), r))
		if r.Seq <= last {
			t.Errorf("revocation %d: Seq %d not after %d", i, r.Seq, last)
		}
		last = r.Seq
	}
	want := make([]*store.Revocation, len(in))
	for i, r := range in {
		w := *r
		w.At = norm(r.At)
		want[i] = &w
	}
	list, err = s.RevocationsSince(ctx(t), 0)
	must(t, "RevocationsSince 0", err)
	diff(t, "RevocationsSince(0)", want, list)
	list, err = s.RevocationsSince(ctx(t), in[1].Seq)
	must(t, "RevocationsSince mid", err)
	diff(t, "RevocationsSince(second)", want[2:], list)
	list, err = s.RevocationsSince(ctx(t), last)
	must(t, "RevocationsSince last", err)
	if len(list) != 0 {
		t.Errorf("RevocationsSince(last) = %d, want 0", len(list))
	}

	// A zero At means now.
	r := &store.Revocation{Kind: store.RevokeUser, Subject: "suzuki"}
	before := time.Now().Add(-time.Second)
	must(t, "AddRevocation zero At", s.AddRevocation(ctx(t), r))
	list, err = s.RevocationsSince(ctx(t), last)
	must(t, "RevocationsSince", err)
	if len(list) != 1 || list[0].Seq != r.Seq || list[0].At.Before(before) {
		t.Errorf("revocation with zero At stored as %+v, want Seq %d At about now", list, r.Seq)
	}
}

func testConcurrentRevocations(t *testing.T, s store.Store) {
	const workers, each = 8, 5
	var wg sync.WaitGroup
	seqs := make(chan int64, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := &store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("s-%d-%d", w, i), At: at(0)}
				if err := s.AddRevocation(context.Background(), r); err != nil {
					t.Errorf("AddRevocation: %v", err)
					return
				}
				seqs <- r.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Errorf("Seq %d assigned twice", q)
		}
		seen[q] = true
	}
	list, err := s.RevocationsSince(ctx(t), 0)
	must(t, "RevocationsSince", err)
	if len(list) != workers*each {
		t.Fatalf("stored %d revocations, want %d", len(list), workers*each)
	}
	for i := 1; i < len(list); i++ {
		if list[i].Seq <= list[i-1].Seq {
			t.Errorf("RevocationsSince out of order at %d: %d after %d", i, list[i].Seq, list[i-1].Seq)
		}
	}
	for _, r := range list {
		if !seen[r.Seq] {
			t.Errorf("stored Seq %d was not returned to any caller", r.Seq)
		}
	}
}

func testKeys(t *testing.T, s store.Store) {
	k1 := &store.Key{ID: "k1", Use: "session", JWK: []byte(`{"kty":"OKP","kid":"k1"}`), CreatedAt: at(0), NotAfter: at(24 * time.Hour)}
	k2 := &store.Key{ID: "k2", Use: "session", JWK: []byte(`{"kty":"OKP","kid":"k2"}`), CreatedAt: at(time.Hour), NotAfter: at(25 * time.Hour)}
	k3 := &store.Key{ID: "a3", Use: "assertion", JWK: []byte(`{"kty":"EC","kid":"a3"}`), CreatedAt: at(30 * time.Minute)}
	for _, k := range []*store.Key{k2, k3, k1} {
		must(t, "PutKey "+k.ID, s.PutKey(ctx(t), k))
	}
	normKey := func(k *store.Key) *store.Key {
		c := *k
		c.CreatedAt, c.NotAfter = norm(k.CreatedAt), norm(k.NotAfter)
		return &c
	}
	got, err := s.ListKeys(ctx(t), "session")
	must(t, "ListKeys session", err)
	diff(t, "ListKeys(session), oldest first", []*store.Key{normKey(k1), normKey(k2)}, got)
	got, err = s.ListKeys(ctx(t), "assertion")
	must(t, "ListKeys assertion", err)
	diff(t, "ListKeys(assertion)", []*store.Key{normKey(k3)}, got)
	got, err = s.ListKeys(ctx(t), "")
	must(t, "ListKeys all", err)
	diff(t, "ListKeys(all)", []*store.Key{normKey(k1), normKey(k3), normKey(k2)}, got)
	got, err = s.ListKeys(ctx(t), "nothing")
	must(t, "ListKeys unknown use", err)
	if len(got) != 0 {
		t.Errorf("ListKeys(nothing) = %d keys, want 0", len(got))
	}

	// Putting the same id again replaces it (retiring a key early).
	k1b := *k1
	k1b.NotAfter = at(time.Hour)
	must(t, "PutKey replace", s.PutKey(ctx(t), &k1b))
	got, err = s.ListKeys(ctx(t), "session")
	must(t, "ListKeys after replace", err)
	diff(t, "ListKeys after replace", []*store.Key{normKey(&k1b), normKey(k2)}, got)

	// DeleteKeys removes only the given use's keys whose NotAfter is set
	// and before the time: k1b (NotAfter 1h) goes at 2h, k2 (25h) stays,
	// as do a ticket key without NotAfter and the assertion key.
	t4 := &store.Key{ID: "t4", Use: "tls-ticket", JWK: []byte(`{"kty":"oct","kid":"t4"}`), CreatedAt: at(0), NotAfter: at(time.Hour)}
	t5 := &store.Key{ID: "t5", Use: "tls-ticket", JWK: []byte(`{"kty":"oct","kid":"t5"}`), CreatedAt: at(time.Minute)}
	must(t, "PutKey t4", s.PutKey(ctx(t), t4))
	must(t, "PutKey t5", s.PutKey(ctx(t), t5))
	n, err := s.DeleteKeys(ctx(t), "session", at(time.Hour))
	must(t, "DeleteKeys at NotAfter", err)
	if n != 0 {
		t.Errorf("DeleteKeys(session, 1h) deleted %d keys, want 0 (NotAfter is not before 1h)", n)
	}
	n, err = s.DeleteKeys(ctx(t), "session", at(2*time.Hour))
	must(t, "DeleteKeys session", err)
	if n != 1 {
		t.Errorf("DeleteKeys(session, 2h) deleted %d keys, want 1", n)
	}
	n, err = s.DeleteKeys(ctx(t), "tls-ticket", at(2*time.Hour))
	must(t, "DeleteKeys tls-ticket", err)
	if n != 1 {
		t.Errorf("DeleteKeys(tls-ticket, 2h) deleted %d keys, want 1", n)
	}
	got, err = s.ListKeys(ctx(t), "")
	must(t, "ListKeys after DeleteKeys", err)
	diff(t, "ListKeys after DeleteKeys, oldest first", []*store.Key{normKey(t5), normKey(k3), normKey(k2)}, got)
	if _, err := s.DeleteKeys(ctx(t), "", at(48*time.Hour)); err == nil {
		t.Error("DeleteKeys without a use: no error")
	}
	got, err = s.ListKeys(ctx(t), "")
	must(t, "ListKeys after refused DeleteKeys", err)
	if len(got) != 3 {
		t.Errorf("a refused DeleteKeys left %d keys, want 3", len(got))
	}
}

func testTimesUTC(t *testing.T, s store.Store) {
	in := time.Date(2026, 12, 31, 23, 59, 59, 999999999, jst) // crosses a day in UTC
	must(t, "CreateUser", s.CreateUser(ctx(t), &store.User{ID: "u", CreatedAt: in, UpdatedAt: in}))
	must(t, "CreateSession", s.CreateSession(ctx(t), &store.Session{ID: "s", UserID: "u", CreatedAt: in, ExpiresAt: in, LastSeen: in}))
	must(t, "AddRevocation", s.AddRevocation(ctx(t), &store.Revocation{Kind: store.RevokeAll, At: in}))
	u, err := s.GetUser(ctx(t), "u")
	must(t, "GetUser", err)
	ss, err := s.GetSession(ctx(t), "s")
	must(t, "GetSession", err)
	rs, err := s.RevocationsSince(ctx(t), 0)
	must(t, "RevocationsSince", err)
	if len(rs) != 1 {
		t.Fatalf("RevocationsSince = %d, want 1", len(rs))
	}
	want := time.Date(2026, 12, 31, 14, 59, 59, 999999000, time.UTC)
	for name, got := range map[string]time.Time{
		"User.CreatedAt": u.CreatedAt, "User.UpdatedAt": u.UpdatedAt,
		"Session.CreatedAt": ss.CreatedAt, "Session.ExpiresAt": ss.ExpiresAt, "Session.LastSeen": ss.LastSeen,
		"Revocation.At": rs[0].At,
	} {
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s = %v (%v), want %v in UTC", name, got, got.Location(), want)
		}
	}
	// The zero time stays zero.
	must(t, "CreateSession zero", s.CreateSession(ctx(t), &store.Session{ID: "z", UserID: "u", CreatedAt: in}))
	z, err := s.GetSession(ctx(t), "z")
	must(t, "GetSession zero", err)
	if !z.ExpiresAt.IsZero() || !z.LastSeen.IsZero() {
		t.Errorf("zero times came back as %v, %v", z.ExpiresAt, z.LastSeen)
	}
}

func testNotifier(t *testing.T, s store.Store) {
	n, ok := s.(store.Notifier)
	if !ok {
		t.Fatalf("%T does not implement store.Notifier; every store must", s)
	}
	sub, err := n.Subscribe(ctx(t))
	must(t, "Subscribe", err)
	r := &store.Revocation{Kind: store.RevokeUser, Subject: "tanaka", At: at(0)}
	must(t, "AddRevocation", s.AddRevocation(ctx(t), r))
	waitFor(t, sub, store.Change{Kind: store.ChangeRevocation, Seq: r.Seq})
	must(t, "CreateUser", s.CreateUser(ctx(t), &store.User{ID: "tanaka"}))
	waitFor(t, sub, store.Change{Kind: store.ChangeUser, ID: "tanaka"})
	must(t, "Publish", n.Publish(ctx(t), store.Change{Kind: store.ChangePolicy}))
	waitFor(t, sub, store.Change{Kind: store.ChangePolicy})
}

func testPrune(t *testing.T, s store.Store) {
	p, ok := s.(store.Pruner)
	if !ok {
		t.Fatalf("%T does not implement store.Pruner; every store must", s)
	}
	must(t, "CreateSession old", s.CreateSession(ctx(t), &store.Session{ID: "old", UserID: "u", CreatedAt: at(0), ExpiresAt: at(time.Hour)}))
	must(t, "CreateSession live", s.CreateSession(ctx(t), &store.Session{ID: "live", UserID: "u", CreatedAt: at(0), ExpiresAt: at(3 * time.Hour)}))
	must(t, "CreateInvitation old", s.CreateInvitation(ctx(t), &store.Invitation{TokenHash: []byte("old"), UserID: "u", ExpiresAt: at(time.Hour)}))
	must(t, "CreateInvitation live", s.CreateInvitation(ctx(t), &store.Invitation{TokenHash: []byte("live"), UserID: "u", ExpiresAt: at(3 * time.Hour)}))
	must(t, "AddRevocation", s.AddRevocation(ctx(t), &store.Revocation{Kind: store.RevokeAll, At: at(0)}))
	must(t, "ConsumeChallenge old", s.ConsumeChallenge(ctx(t), []byte("old"), at(time.Hour)))
	must(t, "ConsumeChallenge live", s.ConsumeChallenge(ctx(t), []byte("live"), at(3*time.Hour)))
	n, err := p.Prune(ctx(t), at(2*time.Hour))
	must(t, "Prune", err)
	if n != 3 {
		t.Errorf("Prune deleted %d records, want 3", n)
	}
	// The live challenge is still remembered; the pruned one is forgotten.
	wantErr(t, "ConsumeChallenge live after Prune", s.ConsumeChallenge(ctx(t), []byte("live"), at(3*time.Hour)), store.ErrChallengeUsed)
	must(t, "ConsumeChallenge old after Prune", s.ConsumeChallenge(ctx(t), []byte("old"), at(time.Hour)))
	_, err = s.GetSession(ctx(t), "old")
	wantErr(t, "GetSession pruned", err, store.ErrNotFound)
	_, err = s.GetSession(ctx(t), "live")
	must(t, "GetSession live", err)
	_, err = s.PeekInvitation(ctx(t), []byte("old"), at(0))
	wantErr(t, "PeekInvitation pruned", err, store.ErrNotFound)
	_, err = s.PeekInvitation(ctx(t), []byte("live"), at(0))
	must(t, "PeekInvitation live", err)
	rs, err := s.RevocationsSince(ctx(t), 0)
	must(t, "RevocationsSince", err)
	if len(rs) != 1 {
		t.Errorf("Prune touched revocations: %d left, want 1", len(rs))
	}
}

func testClose(t *testing.T, s store.Store) {
	var sub <-chan store.Change
	if n, ok := s.(store.Notifier); ok {
		var err error
		sub, err = n.Subscribe(ctx(t))
		must(t, "Subscribe", err)
	}
	must(t, "Close", s.Close())
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if sub == nil {
		return
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-sub:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("subscription still open 5s after Close")
		}
	}
}

// waitFor reads sub until want arrives, failing after 5 seconds.
func waitFor(t *testing.T, sub <-chan store.Change, want store.Change) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case c, ok := <-sub:
			if !ok {
				t.Fatalf("subscription closed while waiting for %+v", want)
			}
			if c == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %+v within 5s", want)
		}
	}
}
