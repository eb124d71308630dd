#include "server/store/migrations.h"

#include <cstdio>
#include <utility>

// embedded_migrations() is defined in the file that cmake/embed_migrations.cmake generates.

namespace atelier::store {
namespace {

constexpr std::string_view kCreateSchemaMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL)";

struct AppliedRow {
  std::int64_t version;
  std::string name;
};

Status validate_list(const std::vector<Migration>& migrations) {
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    const Migration& m = migrations[i];
    if (m.version != static_cast<int>(i) + 1) {
      return Status::invalid_argument(
          "migrations must be numbered 1, 2, 3, ... without gaps or duplicates; position " +
          std::to_string(i + 1) + " holds " + migration_file_name(m));
    }
    if (m.name.empty()) {
      return Status::invalid_argument("migration " + std::to_string(m.version) + " has no name");
    }
  }
  return Status::ok();
}

Result<std::vector<AppliedRow>> read_applied(Db& db) {
  Result<Statement> stmt =
      db.prepare("SELECT version, name FROM schema_migrations ORDER BY version");
  if (!stmt) return stmt.status();
  std::vector<AppliedRow> rows;
  while (true) {
    Result<bool> row = stmt->step();
    if (!row) return row.status();
    if (!*row) break;
    rows.push_back({stmt->column_int64(0), stmt->column_text(1)});
  }
  return rows;
}

Status name_mismatch(std::int64_t version, const std::string& recorded, const Migration& known) {
  return Status::failed_precondition(
      "database recorded migration " + std::to_string(version) + " as '" + recorded +
      "' but this binary's migration " + std::to_string(version) + " is " +
      migration_file_name(known) +
      "; a shipped migration was renamed or renumbered, or the database belongs to a different "
      "build");
}

void rollback(Db& db) {
  // The rollback's own failure adds nothing: the error that led here is what gets reported, and
  // SQLite rolls back by itself when the connection closes.
  if (db.in_transaction()) (void)db.exec("ROLLBACK");
}

// Applies one migration with its bookkeeping row in a single transaction. Sets `skipped` when
// another connection applied it between our check and taking the write lock.
Status apply_one(Db& db, const Migration& m, bool& skipped) {
  skipped = false;
  const std::string file = migration_file_name(m);
  // SQLite's procedure for changing a table's definition (rebuild, drop, rename) needs foreign
  // keys off, and that pragma only takes effect outside a transaction. Restored after the
  // migration whatever happens.
  Result<std::int64_t> fk_before = db.query_int64("PRAGMA foreign_keys");
  if (!fk_before) return fk_before.status();
  ATELIER_RETURN_IF_ERROR(db.exec("PRAGMA foreign_keys = OFF"));
  struct RestoreForeignKeys {
    Db& db;
    bool on;
    ~RestoreForeignKeys() {
      if (on) (void)db.exec("PRAGMA foreign_keys = ON");
    }
  } restore{db, *fk_before == 1};
  ATELIER_RETURN_IF_ERROR(db.exec("BEGIN IMMEDIATE").with_context("applying migration " + file));

  Status st = [&]() -> Status {
    // Re-check under the write lock so two processes starting together cannot both apply it.
    Result<Statement> check = db.prepare("SELECT name FROM schema_migrations WHERE version = ?");
    if (!check) return check.status();
    ATELIER_RETURN_IF_ERROR(check->bind_int64(1, m.version));
    Result<bool> row = check->step();
    if (!row) return row.status();
    if (*row) {
      const std::string recorded = check->column_text(0);
      if (recorded != m.name) return name_mismatch(m.version, recorded, m);
      skipped = true;
      return Status::ok();
    }

    ATELIER_RETURN_IF_ERROR(db.exec(m.sql));
    if (!db.in_transaction()) {
      return Status::internal(
          "the migration ended the transaction itself (remove BEGIN/COMMIT/ROLLBACK from the "
          "file); what ran before that is committed");
    }
    // Foreign keys are off while a migration runs (a table rebuild must not cascade), so they
    // are checked here, before the commit, as SQLite's table-rebuild procedure asks.
    Result<Statement> fk = db.prepare("PRAGMA foreign_key_check");
    if (!fk) return fk.status();
    Result<bool> violation = fk->step();
    if (!violation) return violation.status();
    if (*violation) {
      return Status::corruption("the migration leaves a foreign key violation in table '" +
                                fk->column_text(0) + "'");
    }

    Result<Statement> insert = db.prepare(
        "INSERT INTO schema_migrations(version, name, applied_at) "
        "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))");
    if (!insert) return insert.status();
    ATELIER_RETURN_IF_ERROR(insert->bind_int64(1, m.version));
    ATELIER_RETURN_IF_ERROR(insert->bind_text(2, m.name));
    Result<bool> done = insert->step();
    if (!done) return done.status();
    return db.exec("COMMIT");
  }();

  if (!st.is_ok() || skipped) rollback(db);
  if (!st.is_ok()) return st.with_context("applying migration " + file + " (rolled back)");
  return Status::ok();
}

}  // namespace

std::string migration_file_name(const Migration& migration) {
  char version[16];
  std::snprintf(version, sizeof version, "%04d", migration.version);
  return std::string(version) + "_" + migration.name + ".sql";
}

Result<MigrationReport> apply_migrations(Db& db, const std::vector<Migration>& migrations) {
  ATELIER_RETURN_IF_ERROR(validate_list(migrations));
  if (db.in_transaction()) {
    return Status::internal("apply_migrations called with a transaction open");
  }
  ATELIER_RETURN_IF_ERROR(
      db.exec(kCreateSchemaMigrations).with_context("creating schema_migrations"));

  Result<std::vector<AppliedRow>> applied = read_applied(db);
  if (!applied) return applied.status().with_context("reading schema_migrations");

  const auto newest_known = static_cast<std::int64_t>(migrations.size());
  if (!applied->empty() && applied->back().version > newest_known) {
    return Status::failed_precondition(
        "database schema version " + std::to_string(applied->back().version) +
        " is newer than this binary supports (" + std::to_string(newest_known) +
        "); upgrade atelier or restore a backup");
  }
  for (std::size_t i = 0; i < applied->size(); ++i) {
    const AppliedRow& row = (*applied)[i];
    if (row.version != static_cast<std::int64_t>(i) + 1) {
      return Status::corruption("schema_migrations has a gap: version " + std::to_string(i + 1) +
                                " is missing but " + std::to_string(row.version) + " is recorded");
    }
    const Migration& known = migrations[i];
    if (row.name != known.name) return name_mismatch(row.version, row.name, known);
  }

  MigrationReport report;
  report.from_version = static_cast<int>(applied->size());
  report.to_version = report.from_version;
  for (const Migration& m : migrations) {
    if (m.version <= report.from_version) continue;
    bool skipped = false;
    ATELIER_RETURN_IF_ERROR(apply_one(db, m, skipped));
    if (!skipped) report.applied.push_back(migration_file_name(m));
    report.to_version = m.version;
  }
  return report;
}

}  // namespace atelier::store
