-- Initial schema. NULL times are the zero time. List columns (roles,
-- transports, fingerprints, amr) are JSON arrays of strings.

CREATE TABLE users (
	id           text PRIMARY KEY,
	display_name text NOT NULL DEFAULT '',
	department   text NOT NULL DEFAULT '',
	roles        jsonb NOT NULL DEFAULT '[]',
	disabled     boolean NOT NULL DEFAULT false,
	created_at   timestamptz,
	updated_at   timestamptz
);

CREATE TABLE credentials (
	id               bytea PRIMARY KEY,
	user_id          text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name             text NOT NULL DEFAULT '',
	public_key       bytea NOT NULL,
	attestation_type text NOT NULL DEFAULT '',
	aaguid           bytea,
	sign_count       bigint NOT NULL DEFAULT 0,
	transports       jsonb NOT NULL DEFAULT '[]',
	user_present     boolean NOT NULL DEFAULT false,
	user_verified    boolean NOT NULL DEFAULT false,
	backup_eligible  boolean NOT NULL DEFAULT false,
	backup_state     boolean NOT NULL DEFAULT false,
	clone_warning    boolean NOT NULL DEFAULT false,
	created_at       timestamptz,
	last_used_at     timestamptz
);
CREATE INDEX credentials_user ON credentials(user_id);

CREATE TABLE devices (
	id           text PRIMARY KEY,
	owner        text NOT NULL DEFAULT '',
	department   text NOT NULL DEFAULT '',
	fingerprints jsonb NOT NULL DEFAULT '[]',
	status       text NOT NULL DEFAULT 'active',
	reason       text NOT NULL DEFAULT '',
	first_seen   timestamptz,
	last_seen    timestamptz
);

CREATE TABLE invitations (
	token_hash bytea PRIMARY KEY,
	user_id    text NOT NULL,
	created_by text NOT NULL DEFAULT '',
	created_at timestamptz,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);

CREATE TABLE sessions (
	id         text PRIMARY KEY,
	user_id    text NOT NULL,
	device     text NOT NULL DEFAULT '',
	cert_fp    text NOT NULL DEFAULT '',
	amr        jsonb NOT NULL DEFAULT '[]',
	ip         text NOT NULL DEFAULT '',
	created_at timestamptz,
	expires_at timestamptz,
	last_seen  timestamptz
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Rows are inserted under a transaction-level advisory lock, so seq order
-- is commit order and a replica reading "seq > n" never skips a row that
-- commits later with a smaller seq.
CREATE TABLE revocations (
	seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind    text NOT NULL,
	subject text NOT NULL DEFAULT '',
	at      timestamptz NOT NULL,
	by      text NOT NULL DEFAULT '',
	reason  text NOT NULL DEFAULT ''
);

CREATE TABLE keys (
	id         text PRIMARY KEY,
	use        text NOT NULL,
	jwk        bytea NOT NULL,
	created_at timestamptz,
	not_after  timestamptz
);
CREATE INDEX keys_use ON keys(use, created_at);
