-- 0005_job_loras: what SDXL, single-file checkpoints and LoRA add to a job (issue 17).
--
-- Every column has a default, so the jobs of earlier versions read as jobs without LoRAs, without
-- size conditioning and without hashes.

-- The LoRAs applied, resolved at submission: a JSON array of {"name", "weight", "hash"} (hash:
-- the file's sha256, "" when unknown), the request's `loras` and the prompt's <lora:...> tags
-- merged.
ALTER TABLE jobs ADD COLUMN loras TEXT NOT NULL DEFAULT '[]';
-- The model's sha256 at submission ('' when it has none, e.g. the built-in models).
ALTER TABLE jobs ADD COLUMN model_hash TEXT NOT NULL DEFAULT '';
-- SDXL size conditioning, resolved at submission; all NULL for models that do not take it.
ALTER TABLE jobs ADD COLUMN original_width INTEGER;
ALTER TABLE jobs ADD COLUMN original_height INTEGER;
ALTER TABLE jobs ADD COLUMN target_width INTEGER;
ALTER TABLE jobs ADD COLUMN target_height INTEGER;
ALTER TABLE jobs ADD COLUMN crop_top INTEGER;
ALTER TABLE jobs ADD COLUMN crop_left INTEGER;
-- What the generator warned about (a JSON array of strings), stored when the job is done.
ALTER TABLE jobs ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
