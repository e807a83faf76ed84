-- WebAuthn challenges already finished, so that a ceremony (its sealed
-- cookie and the authenticator's answer) finishes at most once across all
-- replicas, also for passkeys whose signature counter is always 0.
-- Rows are pruned after expires_at.
CREATE TABLE used_challenges (
	hash       bytea PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX used_challenges_expiry ON used_challenges(expires_at);
