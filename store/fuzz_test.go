package store_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/sekisho/sekisho/store"
)

// FuzzSQLiteRoundTrip stores arbitrary text (what staff type as names and
// passkey labels, what admins type as roles) and bytes (credential ids
// from the browser) and checks that exactly the same comes back.
func FuzzSQLiteRoundTrip(f *testing.F) {
	f.Add("tanaka", "田中 太郎", "staff", []byte{1, 2, 3})
	f.Add("o'brien", `"quoted"; DROP TABLE users; --`, "a,b", []byte{0})
	f.Add("x", "\x00nul", "[]", []byte{0, 0})
	f.Add("📱", "職場のPC\n改行", "null", bytes.Repeat([]byte{0xff}, 64))
	st, err := store.OpenSQLite(context.Background(), ":memory:")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	f.Fuzz(func(t *testing.T, id, text, role string, credID []byte) {
		if id == "" || len(credID) == 0 || !utf8.ValidString(role) {
			return // ids are required; list items are JSON, so UTF-8
		}
		ctx := context.Background()
		u := &store.User{ID: id, DisplayName: text, Department: text, Roles: []string{role, text}}
		if !utf8.ValidString(text) {
			u.Roles = []string{role}
		}
		err := st.CreateUser(ctx, u)
		if errors.Is(err, store.ErrExists) {
			err = st.UpdateUser(ctx, u)
		}
		if err != nil {
			t.Fatalf("storing user %q: %v", id, err)
		}
		got, err := st.GetUser(ctx, id)
		if err != nil {
			t.Fatalf("GetUser(%q): %v", id, err)
		}
		if got.ID != id || got.DisplayName != text || got.Department != text || !slices.Equal(got.Roles, u.Roles) {
			t.Errorf("user round trip: stored %+v, got %+v", u, got)
		}
		c := &store.Credential{ID: credID, UserID: id, Name: text, PublicKey: credID}
		if err := st.AddCredential(ctx, c); err != nil && !errors.Is(err, store.ErrExists) {
			t.Fatalf("AddCredential: %v", err)
		}
		if err := st.RenameCredential(ctx, id, credID, text); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("RenameCredential: %v", err)
		}
		gc, err := st.GetCredential(ctx, credID)
		if err != nil {
			t.Fatalf("GetCredential: %v", err)
		}
		if !bytes.Equal(gc.ID, credID) {
			t.Errorf("credential id round trip: %x, got %x", credID, gc.ID)
		}
		if gc.UserID == id && gc.Name != text {
			t.Errorf("credential name round trip: %q, got %q", text, gc.Name)
		}
	})
}
