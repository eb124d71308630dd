-- 0001_instance: who this installation is, and a place for runtime settings.
--
-- Applied once, inside one transaction, by the server at start-up (server/store/migrations.h).
-- Never edit this file after it has shipped: add a new numbered migration instead.

-- Exactly one row, written by Store::open the first time the database is opened. The id is 32
-- lowercase hex characters from a random source; it tells installations apart in logs, metrics
-- and backups, and survives restarts and upgrades.
CREATE TABLE instance (
  id TEXT PRIMARY KEY NOT NULL,
  created_at TEXT NOT NULL  -- UTC, ISO 8601 (e.g. 2024-05-01T12:00:00.000Z)
);

-- Settings changed at run time (through the API or the CLI), as opposed to the config file.
-- Values are text; each reader parses and validates its own keys.
-- NOT NULL because SQLite, for historical reasons, lets a TEXT PRIMARY KEY column hold NULLs.
CREATE TABLE settings (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);
