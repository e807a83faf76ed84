package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/sekisho/sekisho/store"
)

// KeyUse is the store key use under which the console's form-token key is
// kept, so that every replica signs and checks the same tokens.
const KeyUse = "console-csrf"

// CSRFKeyFromStore returns the console's form-token key, creating it in st
// on first use. Replicas that start at once may each create one; all then
// use the oldest, so they agree.
func CSRFKeyFromStore(ctx context.Context, st store.Store) ([]byte, error) {
	oldest := func() ([]byte, error) {
		keys, err := st.ListKeys(ctx, KeyUse)
		if err != nil || len(keys) == 0 {
			return nil, err
		}
		b, err := base64.RawStdEncoding.DecodeString(string(keys[0].JWK))
		if err != nil || len(b) < 32 {
			return nil, fmt.Errorf("console form-token key %s is malformed", keys[0].ID)
		}
		return b, nil
	}
	if k, err := oldest(); err != nil || k != nil {
		return k, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("making the console form-token key: %w", err)
	}
	id := make([]byte, 9)
	_, _ = rand.Read(id)
	k := &store.Key{ID: KeyUse + "-" + base64.RawURLEncoding.EncodeToString(id), Use: KeyUse,
		JWK: []byte(base64.RawStdEncoding.EncodeToString(raw)), CreatedAt: time.Now().UTC()}
	if err := st.PutKey(ctx, k); err != nil {
		return nil, fmt.Errorf("storing the console form-token key: %w", err)
	}
	return oldest()
}
