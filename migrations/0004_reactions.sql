-- 0004_reactions: emoji reactions of project members to images.
-- One row per (image, user, emoji): a member reacts with an emoji once; counts are per emoji.
CREATE TABLE reactions (
  image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  emoji TEXT NOT NULL,
  created_at INTEGER NOT NULL,  -- Unix ms
  PRIMARY KEY (image_id, emoji, user_id)
) WITHOUT ROWID;
