-- 0003_jobs: generation jobs and the images they produce.
--
-- Applied once, inside one transaction (server/store/migrations.h). Never edit this file after it
-- has shipped: add a new numbered migration instead.
--
-- Times here are Unix MILLISECONDS (submit-to-done latencies are sub-second, and leases need
-- finer steps than seconds). The job row is the durable truth; the in-memory scheduler is rebuilt
-- from the queued rows at start-up.

CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  -- NULL once the submitter's account is deleted; the job stays in the project's history.
  submitted_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  -- The request, every value resolved (defaults applied) and validated at submission.
  model TEXT NOT NULL,
  prompt TEXT NOT NULL,
  negative_prompt TEXT NOT NULL DEFAULT '',
  width INTEGER NOT NULL CHECK (width > 0),
  height INTEGER NOT NULL CHECK (height > 0),
  steps INTEGER NOT NULL CHECK (steps > 0),
  guidance REAL NOT NULL,
  seed INTEGER NOT NULL,
  count INTEGER NOT NULL CHECK (count > 0),
  sampler TEXT NOT NULL,
  mode TEXT NOT NULL CHECK (mode IN ('txt2img', 'variation', 'remix', 'upscale')),
  strength REAL NOT NULL,
  parent_image_id INTEGER REFERENCES images (id) ON DELETE SET NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  -- Execution. attempt counts claims; a completion is accepted only for the current attempt of a
  -- job still 'running' (fencing), so a worker that lost its lease cannot publish a result.
  attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  worker TEXT,          -- who holds the lease while running
  lease_until INTEGER,  -- ms; a running job whose lease passed is re-queued by the reaper
  progress_step INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
  error TEXT,           -- why it failed, shown to users
  -- Idempotency-Key of the submission and a hash of its body: a retry with the same key and body
  -- returns this job; the same key with another body is refused.
  idempotency_key TEXT,
  request_hash TEXT,
  created_at INTEGER NOT NULL,
  queued_at INTEGER NOT NULL,  -- last time it became queued (the scheduler's ageing clock)
  started_at INTEGER,          -- the current attempt's claim
  finished_at INTEGER,
  updated_at INTEGER NOT NULL
);

-- Paging a project's jobs (newest first) and filtering by state.
CREATE INDEX jobs_by_project ON jobs (project_id, id);
CREATE INDEX jobs_by_project_state ON jobs (project_id, state, id);
-- Start-up recovery and the reaper only look at live jobs.
CREATE INDEX jobs_live ON jobs (state, lease_until) WHERE state IN ('queued', 'running');
-- One job per (submitter, project, key).
CREATE UNIQUE INDEX jobs_idempotency ON jobs (submitted_by, project_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- One row per generated image. The file lives in the content-addressed image store under its
-- SHA-256, so identical bytes are stored once; a file no row refers to is swept at start-up.
CREATE TABLE images (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),  -- position within the job (seed = job seed + idx)
  created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
  sha256 TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  parent_image_id INTEGER REFERENCES images (id) ON DELETE SET NULL,
  -- The generator's opaque state for this image, so children (variation, remix, upscale) can
  -- reproduce or perturb it exactly.
  lineage TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  UNIQUE (job_id, idx)
);

CREATE INDEX images_by_project ON images (project_id, id);
CREATE INDEX images_by_parent ON images (parent_image_id);
CREATE INDEX images_by_sha ON images (sha256);

-- The per-user queue limit counts a user's queued jobs at every submission.
CREATE INDEX jobs_queued_by_user ON jobs (submitted_by) WHERE state = 'queued';
