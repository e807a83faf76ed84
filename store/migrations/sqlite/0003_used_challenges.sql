-- WebAuthn challenges already finished, so that a ceremony (its sealed
-- cookie and the authenticator's answer) finishes at most once, also for
-- passkeys whose signature counter is always 0. Rows are pruned after
-- expires_at.
CREATE TABLE used_challenges (
	hash       BLOB PRIMARY KEY,
	expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX used_challenges_expiry ON used_challenges(expires_at);
