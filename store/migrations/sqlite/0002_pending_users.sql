-- Scheduled staff changes (人事異動 with a future 発令日), written by
-- package directory and applied by its scheduler when effective_at comes.
-- One row per user and moment: a later import for the same moment
-- replaces it.
CREATE TABLE pending_users (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      TEXT NOT NULL,
	effective_at TEXT NOT NULL,
	display_name TEXT NOT NULL DEFAULT '',
	department   TEXT NOT NULL DEFAULT '',
	roles        TEXT NOT NULL DEFAULT '[]',
	disabled     INTEGER NOT NULL DEFAULT 0,
	source       TEXT NOT NULL DEFAULT '',
	created_by   TEXT NOT NULL DEFAULT '',
	created_at   TEXT,
	UNIQUE (user_id, effective_at)
) STRICT;
CREATE INDEX pending_users_due ON pending_users(effective_at, seq);
