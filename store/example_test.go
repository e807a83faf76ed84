package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/store"
)

// Enrolling a staff member: an administrator creates the account and a
// one-time invitation; the first use of the link consumes it, the second
// is refused. A revocation reaches subscribers.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sekisho-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := store.Open(ctx, "sqlite", filepath.Join(dir, "data", "sekisho.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	err = st.CreateUser(ctx, &store.User{ID: "tanaka", DisplayName: "田中 太郎", Department: "税務課", Roles: []string{"staff"}})
	if err != nil {
		log.Fatal(err)
	}
	hash := sha256.Sum256([]byte("token from the invitation link"))
	err = st.CreateInvitation(ctx, &store.Invitation{TokenHash: hash[:], UserID: "tanaka", CreatedBy: "admin", ExpiresAt: now.Add(72 * time.Hour)})
	if err != nil {
		log.Fatal(err)
	}

	inv, err := st.ConsumeInvitation(ctx, hash[:], now.Add(time.Hour))
	fmt.Println("first use:", inv.UserID, err)
	_, err = st.ConsumeInvitation(ctx, hash[:], now.Add(2*time.Hour))
	fmt.Println("second use refused:", errors.Is(err, store.ErrInvitationUsed))

	changes, err := st.(store.Notifier).Subscribe(ctx)
	if err != nil {
		log.Fatal(err)
	}
	r := &store.Revocation{Kind: store.RevokeUser, Subject: "tanaka", By: "csirt", Reason: "端末紛失"}
	if err := st.AddRevocation(ctx, r); err != nil {
		log.Fatal(err)
	}
	c := <-changes
	fmt.Println("change:", c.Kind, c.Seq == r.Seq)
	// Output:
	// first use: tanaka <nil>
	// second use refused: true
	// change: revocation true
}
