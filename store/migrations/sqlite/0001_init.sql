-- Initial schema. Times are TEXT in the fixed-width UTC form
-- 2006-01-02T15:04:05.000000Z so that text order is time order; NULL is
-- the zero time. List columns (roles, transports, fingerprints, amr) are
-- JSON arrays of strings.

CREATE TABLE users (
	id           TEXT PRIMARY KEY,
	display_name TEXT NOT NULL DEFAULT '',
	department   TEXT NOT NULL DEFAULT '',
	roles        TEXT NOT NULL DEFAULT '[]',
	disabled     INTEGER NOT NULL DEFAULT 0,
	created_at   TEXT,
	updated_at   TEXT
) STRICT;

CREATE TABLE credentials (
	id               BLOB PRIMARY KEY,
	user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name             TEXT NOT NULL DEFAULT '',
	public_key       BLOB NOT NULL,
	attestation_type TEXT NOT NULL DEFAULT '',
	aaguid           BLOB,
	sign_count       INTEGER NOT NULL DEFAULT 0,
	transports       TEXT NOT NULL DEFAULT '[]',
	user_present     INTEGER NOT NULL DEFAULT 0,
	user_verified    INTEGER NOT NULL DEFAULT 0,
	backup_eligible  INTEGER NOT NULL DEFAULT 0,
	backup_state     INTEGER NOT NULL DEFAULT 0,
	clone_warning    INTEGER NOT NULL DEFAULT 0,
	created_at       TEXT,
	last_used_at     TEXT
) STRICT;
CREATE INDEX credentials_user ON credentials(user_id);

CREATE TABLE devices (
	id           TEXT PRIMARY KEY,
	owner        TEXT NOT NULL DEFAULT '',
	department   TEXT NOT NULL DEFAULT '',
	fingerprints TEXT NOT NULL DEFAULT '[]',
	status       TEXT NOT NULL DEFAULT 'active',
	reason       TEXT NOT NULL DEFAULT '',
	first_seen   TEXT,
	last_seen    TEXT
) STRICT;

CREATE TABLE invitations (
	token_hash BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created_at TEXT,
	expires_at TEXT NOT NULL,
	used_at    TEXT
) STRICT;

CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	device     TEXT NOT NULL DEFAULT '',
	cert_fp    TEXT NOT NULL DEFAULT '',
	amr        TEXT NOT NULL DEFAULT '[]',
	ip         TEXT NOT NULL DEFAULT '',
	created_at TEXT,
	expires_at TEXT,
	last_seen  TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions(user_id);

-- AUTOINCREMENT: a seq is never reused, even after the newest row is
-- deleted, so replicas asking "since seq" never miss one.
CREATE TABLE revocations (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	kind    TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	at      TEXT NOT NULL,
	by      TEXT NOT NULL DEFAULT '',
	reason  TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE keys (
	id         TEXT PRIMARY KEY,
	use        TEXT NOT NULL,
	jwk        BLOB NOT NULL,
	created_at TEXT,
	not_after  TEXT
) STRICT;
CREATE INDEX keys_use ON keys(use, created_at);
