-- 0006_project_disk_bytes: how many bytes of image files each project uses (issue 19), kept in
-- the project row so that reading it costs nothing.
--
-- Applied once, inside one transaction (server/store/migrations.h). Never edit this file after it
-- has shipped: add a new numbered migration instead.
--
-- Counted once per distinct file (sha256) in the project, as the content-addressed image store
-- keeps identical bytes once; a file shared with another project counts in both. Thumbnails are
-- a cache rebuilt on demand and are not counted. The triggers keep the sum as image rows come and
-- go (rows go with their job or project, by cascade).

ALTER TABLE projects ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT 0;

-- The images stored before this migration: each distinct file once (its first row).
UPDATE projects SET disk_bytes = (
  SELECT COALESCE(SUM(i.bytes), 0) FROM images i
  WHERE i.project_id = projects.id
    AND i.id = (SELECT MIN(j.id) FROM images j
                WHERE j.project_id = i.project_id AND j.sha256 = i.sha256));

-- A row adds its file's bytes when it is the project's first row for that file.
CREATE TRIGGER images_add_disk_bytes AFTER INSERT ON images
WHEN NOT EXISTS (SELECT 1 FROM images WHERE sha256 = NEW.sha256 AND project_id = NEW.project_id
                 AND id <> NEW.id)
BEGIN
  UPDATE projects SET disk_bytes = disk_bytes + NEW.bytes WHERE id = NEW.project_id;
END;

-- A row takes them away when it was the project's last row for that file.
CREATE TRIGGER images_remove_disk_bytes AFTER DELETE ON images
WHEN NOT EXISTS (SELECT 1 FROM images WHERE sha256 = OLD.sha256 AND project_id = OLD.project_id)
BEGIN
  UPDATE projects SET disk_bytes = disk_bytes - OLD.bytes WHERE id = OLD.project_id;
END;
