-- 0007_uploads_and_edits: images people upload, and inpaint / outpaint jobs (issue 20).
--
-- Applied once, inside one transaction, with foreign keys off (server/store/migrations.h). Never
-- edit this file after it has shipped: add a new numbered migration instead.
--
-- Both tables are rebuilt (SQLite's documented procedure: create, copy, drop, rename), because
-- an upload has no job (images.job_id becomes nullable) and the jobs.mode CHECK gains two modes.
-- Every row keeps its id, so references from other tables stay valid.

CREATE TABLE images_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  -- The job that made it; NULL for an upload (a lineage root).
  job_id INTEGER REFERENCES jobs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),  -- position within the job (seed = job seed + idx)
  -- Who submitted the job, or who uploaded the file.
  created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
  sha256 TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  parent_image_id INTEGER REFERENCES images (id) ON DELETE SET NULL,
  lineage TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  source TEXT NOT NULL DEFAULT 'generated' CHECK (source IN ('generated', 'upload')),
  -- An upload's file name as the uploader's browser or tool gave it, sanitised; NULL otherwise.
  original_name TEXT,
  CHECK ((source = 'upload') = (job_id IS NULL)),
  UNIQUE (job_id, idx)
);
INSERT INTO images_new (id, project_id, job_id, idx, created_by, sha256, bytes, width, height,
                        seed, parent_image_id, lineage, created_at, source, original_name)
  SELECT id, project_id, job_id, idx, created_by, sha256, bytes, width, height, seed,
         parent_image_id, lineage, created_at, 'generated', NULL
  FROM images;
-- AUTOINCREMENT's high-water mark carries over, so ids of deleted rows are never reused.
DELETE FROM sqlite_sequence WHERE name = 'images_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'images_new', seq FROM sqlite_sequence WHERE name = 'images';
DROP TABLE images;
ALTER TABLE images_new RENAME TO images;

CREATE INDEX images_by_project ON images (project_id, id);
CREATE INDEX images_by_parent ON images (parent_image_id);
CREATE INDEX images_by_sha ON images (sha256);
-- The per-user upload rate (max_uploads_per_user_per_hour) counts a user's recent uploads.
CREATE INDEX images_uploads_by_user ON images (created_by, created_at) WHERE source = 'upload';

-- 0006's triggers went with the old table; the same rules again.
CREATE TRIGGER images_add_disk_bytes AFTER INSERT ON images
WHEN NOT EXISTS (SELECT 1 FROM images WHERE sha256 = NEW.sha256 AND project_id = NEW.project_id
                 AND id <> NEW.id)
BEGIN
  UPDATE projects SET disk_bytes = disk_bytes + NEW.bytes WHERE id = NEW.project_id;
END;
CREATE TRIGGER images_remove_disk_bytes AFTER DELETE ON images
WHEN NOT EXISTS (SELECT 1 FROM images WHERE sha256 = OLD.sha256 AND project_id = OLD.project_id)
BEGIN
  UPDATE projects SET disk_bytes = disk_bytes - OLD.bytes WHERE id = OLD.project_id;
END;

CREATE TABLE jobs_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  submitted_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
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
  mode TEXT NOT NULL CHECK (mode IN ('txt2img', 'variation', 'remix', 'upscale', 'inpaint',
                                     'outpaint')),
  strength REAL NOT NULL,
  parent_image_id INTEGER REFERENCES images (id) ON DELETE SET NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  worker TEXT,
  lease_until INTEGER,
  progress_step INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
  error TEXT,
  idempotency_key TEXT,
  request_hash TEXT,
  created_at INTEGER NOT NULL,
  queued_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL,
  loras TEXT NOT NULL DEFAULT '[]',
  model_hash TEXT NOT NULL DEFAULT '',
  original_width INTEGER,
  original_height INTEGER,
  target_width INTEGER,
  target_height INTEGER,
  crop_top INTEGER,
  crop_left INTEGER,
  warnings TEXT NOT NULL DEFAULT '[]',
  -- Inpaint and outpaint (NULL for the other modes). The mask: an image of the parent's size,
  -- white = regenerate (inpaint only; an outpaint's mask is the added border).
  mask_image_id INTEGER REFERENCES images (id) ON DELETE SET NULL,
  mask_blur INTEGER CHECK (mask_blur >= 0),  -- pixels
  inpaint_area TEXT CHECK (inpaint_area IN ('whole', 'masked')),
  extend_left INTEGER CHECK (extend_left >= 0),  -- outpaint: pixels added on each side
  extend_right INTEGER CHECK (extend_right >= 0),
  extend_top INTEGER CHECK (extend_top >= 0),
  extend_bottom INTEGER CHECK (extend_bottom >= 0)
);
INSERT INTO jobs_new (id, project_id, submitted_by, state, model, prompt, negative_prompt, width,
                      height, steps, guidance, seed, count, sampler, mode, strength,
                      parent_image_id, priority, attempt, max_attempts, worker, lease_until,
                      progress_step, cancel_requested, error, idempotency_key, request_hash,
                      created_at, queued_at, started_at, finished_at, updated_at, loras,
                      model_hash, original_width, original_height, target_width, target_height,
                      crop_top, crop_left, warnings)
  SELECT id, project_id, submitted_by, state, model, prompt, negative_prompt, width, height, steps,
         guidance, seed, count, sampler, mode, strength, parent_image_id, priority, attempt,
         max_attempts, worker, lease_until, progress_step, cancel_requested, error,
         idempotency_key, request_hash, created_at, queued_at, started_at, finished_at,
         updated_at, loras, model_hash, original_width, original_height, target_width,
         target_height, crop_top, crop_left, warnings
  FROM jobs;
-- AUTOINCREMENT's high-water mark carries over, so ids of deleted rows are never reused.
DELETE FROM sqlite_sequence WHERE name = 'jobs_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_new', seq FROM sqlite_sequence WHERE name = 'jobs';
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

CREATE INDEX jobs_by_project ON jobs (project_id, id);
CREATE INDEX jobs_by_project_state ON jobs (project_id, state, id);
CREATE INDEX jobs_live ON jobs (state, lease_until) WHERE state IN ('queued', 'running');
CREATE UNIQUE INDEX jobs_idempotency ON jobs (submitted_by, project_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_queued_by_user ON jobs (submitted_by) WHERE state = 'queued';
CREATE INDEX jobs_by_mask ON jobs (mask_image_id) WHERE mask_image_id IS NOT NULL;
