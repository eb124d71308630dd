-- 0002_accounts_projects: users and their credentials; projects with members, invites and a
-- per-project event log.
--
-- Applied once, inside one transaction (server/store/migrations.h). Never edit this file after it
-- has shipped: add a new numbered migration instead.
--
-- Times are Unix seconds (INTEGER). Foreign keys are enforced: the Store turns them on for every
-- connection. Booleans are 0/1 INTEGERs with a CHECK, because SQLite has no boolean type and would
-- otherwise accept anything.

-- One row per account. Usernames are stored exactly as given: the API layer normalizes them
-- (server/auth/username.h) before they get here, so UNIQUE compares the normalized form.
-- AUTOINCREMENT so that a deleted user's id is never handed to a new account (old log lines and
-- events keep pointing at the right person, or at nobody).
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,  -- PHC string (Argon2id), never the password
  is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at INTEGER NOT NULL
);

-- Browser sessions and API tokens. Only the SHA-256 of the secret is stored (auth::hash_secret);
-- a presented secret is found by that hash, hence UNIQUE (which is also the lookup index).
-- Revoked rows are kept (revoked_at set) so a token list or audit can still show them.
CREATE TABLE credentials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('session', 'api')),
  name TEXT NOT NULL,
  scope TEXT NOT NULL CHECK (scope IN ('read', 'submit', 'admin')),
  secret_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,    -- NULL: never expires
  revoked_at INTEGER,    -- NULL: still valid
  last_used_at INTEGER   -- NULL: never used (or not yet recorded)
);

-- A user's credentials: token lists, revoke-all, and the cascade when a user is deleted.
CREATE INDEX credentials_by_user ON credentials (user_id);

-- The shared rooms. created_by is history only (who made it); ownership lives in members, so the
-- creator may leave or be deleted without taking the project along (hence SET NULL).
CREATE TABLE projects (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- Who may do what in a project. Deleting either side removes the membership.
CREATE TABLE members (
  project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
  added_at INTEGER NOT NULL,
  PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;

-- "Projects I am in" (the primary key only serves lookups by project), and the user cascade.
CREATE INDEX members_by_user ON members (user_id);

-- Invite links. Only the code's hash is stored, like credentials. uses never exceeds max_uses:
-- the CHECK backs up the API's own test, so a race or a bug cannot over-spend an invite.
CREATE TABLE invites (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
  max_uses INTEGER NOT NULL CHECK (max_uses >= 1),
  uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
  expires_at INTEGER NOT NULL,
  created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER  -- NULL: usable (until expired or used up)
);

-- The project cascade and listing a project's invites.
CREATE INDEX invites_by_project ON invites (project_id);

-- Each project's append-only event log. seq runs 1, 2, 3, ... per project with no gaps (the one
-- writer thread computes MAX(seq) + 1 inside the transaction that makes the change), so a client
-- that has seen seq N can ask for everything after N and know it missed nothing.
-- actor is a user id, or 0 for the system; deliberately not a foreign key, so the log outlives
-- the people in it. data is a serialized JSON object.
CREATE TABLE events (
  project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL CHECK (seq >= 1),
  type TEXT NOT NULL,
  actor INTEGER NOT NULL,
  data TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object'),
  ts INTEGER NOT NULL,
  PRIMARY KEY (project_id, seq)
) WITHOUT ROWID;
