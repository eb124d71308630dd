// Schema migrations: numbered SQL files applied once each, in order, at start-up.
//
// The files live in migrations/NNNN_name.sql and are compiled into the binary (see
// cmake/embed_migrations.cmake), so a binary always carries exactly the schema it was built for
// and never reads SQL from disk at run time.
//
// Rules for migration files:
//   - Never edit or renumber a migration that has shipped; add a new one. A database that
//     recorded a version under another name is refused at start-up.
//   - No BEGIN/COMMIT/ROLLBACK inside a file: each file already runs in its own transaction,
//     together with its schema_migrations row, so it applies entirely or not at all.
//   - Statements that cannot run inside a transaction (VACUUM, PRAGMA journal_mode,
//     PRAGMA foreign_keys) do not belong in migrations.
//   - Foreign keys are OFF while a file runs (turned back on after it), so a table can be
//     rebuilt (CREATE new, copy, DROP old, RENAME new) without cascading deletes; violations
//     are checked with PRAGMA foreign_key_check before the commit and refuse the migration.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "server/store/sqlite.h"

namespace atelier::store {

struct Migration {
  int version = 0;   // NNNN from the file name
  std::string name;  // the part after "NNNN_", without ".sql"
  std::string sql;   // the file's contents
};

// "0003_jobs.sql": how errors and reports name a migration.
std::string migration_file_name(const Migration& migration);

// The migrations compiled into this binary, sorted by version. The build guarantees unique
// versions; a unit test guarantees they are contiguous from 1.
const std::vector<Migration>& embedded_migrations();

struct MigrationReport {
  int from_version = 0;              // highest version applied before this run (0: empty db)
  int to_version = 0;                // highest version applied after it
  std::vector<std::string> applied;  // file names applied in this run, in order
};

// Brings `db` up to the newest of `migrations`, which must be sorted with versions contiguous
// from 1 (kInvalidArgument otherwise). Creates schema_migrations if missing. Each pending
// migration runs in its own BEGIN IMMEDIATE transaction together with its schema_migrations row;
// on failure that transaction is rolled back, earlier ones stay applied, and the error names the
// file.
//
// Refuses (kFailedPrecondition, nothing applied) a database that
//   - has a version newer than the newest migration given (written by a newer binary), or
//   - recorded a known version under a different name (a migration was edited or renumbered).
// A schema_migrations table with gaps is kCorruption.
//
// Must not be called with a transaction open on `db`.
Result<MigrationReport> apply_migrations(Db& db, const std::vector<Migration>& migrations);

}  // namespace atelier::store
