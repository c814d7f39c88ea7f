-- amaretti's SQLite schema version 1 as it shipped (migration 1), frozen:
-- tests build old databases from it, and a test keeps migration 1 equal to it.
CREATE TABLE editors (
		id         TEXT PRIMARY KEY,
		username   TEXT NOT NULL UNIQUE COLLATE NOCASE,
		role       TEXT NOT NULL CHECK (role IN ('editor', 'bot', 'admin', 'superuser')),
		active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
		auth_epoch INTEGER NOT NULL, -- microseconds since 1970-01-01 UTC
		created    INTEGER NOT NULL, -- microseconds since 1970-01-01 UTC
		version    INTEGER NOT NULL DEFAULT 1
	) STRICT;
PRAGMA user_version = 1;
