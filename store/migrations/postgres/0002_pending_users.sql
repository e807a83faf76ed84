-- Scheduled staff changes (人事異動 with a future 発令日), written by
-- package directory and applied by its scheduler when effective_at comes.
-- One row per user and moment: a later import for the same moment
-- replaces it.
CREATE TABLE pending_users (
	seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id      text NOT NULL,
	effective_at timestamptz NOT NULL,
	display_name text NOT NULL DEFAULT '',
	department   text NOT NULL DEFAULT '',
	roles        jsonb NOT NULL DEFAULT '[]',
	disabled     boolean NOT NULL DEFAULT false,
	source       text NOT NULL DEFAULT '',
	created_by   text NOT NULL DEFAULT '',
	created_at   timestamptz,
	UNIQUE (user_id, effective_at)
);
CREATE INDEX pending_users_due ON pending_users(effective_at, seq);
