#include "server/jobs/reactions.h"

#include <string>
#include <vector>

#include "server/store/sql_bind.h"

namespace atelier::jobs::reactions {

namespace {

// Decodes one UTF-8 code point at `i`, advancing it; -1 on malformed input (overlong forms,
// surrogates and values past U+10FFFF included).
int32_t next_code_point(std::string_view s, size_t& i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  int len = 0;
  int32_t cp = 0;
  if (c < 0x80) {
    ++i;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return -1;
  }
  if (i + static_cast<size_t>(len) > s.size()) return -1;
  for (int k = 1; k < len; ++k) {
    const unsigned char cc = byte(i + static_cast<size_t>(k));
    if ((cc & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr int32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += static_cast<size_t>(len);
  return cp;
}

bool is_space_or_control(int32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200C) ||  // spaces and zero-width ones; U+200D (ZWJ) is fine
         (cp >= 0x2028 && cp <= 0x202F) || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

Status bad(std::string message) {
  return Status::invalid_argument(std::move(message), "emoji");
}

}  // namespace

Status validate_emoji(std::string_view emoji) {
  if (emoji.empty()) return bad("emoji must not be empty");
  if (emoji.size() > kMaxEmojiBytes) {
    return bad("emoji is longer than " + std::to_string(kMaxEmojiBytes) + " bytes");
  }
  std::vector<int32_t> cps;
  for (size_t i = 0; i < emoji.size();) {
    const int32_t cp = next_code_point(emoji, i);
    if (cp < 0) return bad("emoji is not valid UTF-8");
    if (is_space_or_control(cp)) return bad("emoji must not contain spaces or control characters");
    cps.push_back(cp);
  }
  const bool keycap_base = cps[0] == '#' || cps[0] == '*' || (cps[0] >= '0' && cps[0] <= '9');
  if (keycap_base) {
    // 1, then U+FE0F (optional) and U+20E3: "1️⃣".
    size_t k = 1;
    if (k < cps.size() && cps[k] == 0xFE0F) ++k;
    if (k + 1 == cps.size() && cps[k] == 0x20E3) return Status::ok();
    return bad("emoji must be an emoji, not text");
  }
  for (int32_t cp : cps) {
    if (cp < 0x80) return bad("emoji must be an emoji, not text");
  }
  return Status::ok();
}

Result<bool> set(store::Db& db, int64_t image_id, int64_t user_id, std::string_view emoji,
                 SysTime now) {
  ATELIER_RETURN_IF_ERROR(
      store::run(db,
                 "INSERT INTO reactions (image_id, user_id, emoji, created_at) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT DO NOTHING",
                 image_id, user_id, emoji, to_unix_ms(now)));  // the column holds Unix ms
  return db.changes() > 0;
}

Result<bool> clear(store::Db& db, int64_t image_id, int64_t user_id, std::string_view emoji) {
  ATELIER_RETURN_IF_ERROR(
      store::run(db, "DELETE FROM reactions WHERE image_id = ? AND user_id = ? AND emoji = ?",
                 image_id, user_id, emoji));
  return db.changes() > 0;
}

Result<Counts> counts(store::Db& db, int64_t image_id) {
  ATELIER_ASSIGN_OR_RETURN(
      store::Statement stmt,
      store::prepare_bound(
          db, "SELECT emoji, COUNT(*) FROM reactions WHERE image_id = ? GROUP BY emoji", image_id));
  Counts out;
  while (true) {
    ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out[stmt.column_text(0)] = stmt.column_int64(1);
  }
  return out;
}

Result<std::vector<std::string>> mine(store::Db& db, int64_t image_id, int64_t user_id) {
  ATELIER_ASSIGN_OR_RETURN(
      store::Statement stmt,
      store::prepare_bound(
          db, "SELECT emoji FROM reactions WHERE image_id = ? AND user_id = ? ORDER BY emoji",
          image_id, user_id));
  std::vector<std::string> out;
  while (true) {
    ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back(stmt.column_text(0));
  }
  return out;
}

Result<std::unordered_map<int64_t, Counts>> counts_for(store::Db& db,
                                                       std::span<const int64_t> image_ids) {
  std::unordered_map<int64_t, Counts> out;
  if (image_ids.empty()) return out;
  // The ids as one JSON array parameter: a single statement (and one cached text) for a page.
  std::string ids = "[";
  for (int64_t id : image_ids) {
    if (ids.size() > 1) ids += ',';
    ids += std::to_string(id);
  }
  ids += ']';
  ATELIER_ASSIGN_OR_RETURN(
      store::Statement stmt,
      store::prepare_bound(
          db,
          "SELECT image_id, emoji, COUNT(*) FROM reactions "
          "WHERE image_id IN (SELECT value FROM json_each(?)) GROUP BY image_id, emoji",
          std::string_view(ids)));
  while (true) {
    ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out[stmt.column_int64(0)][stmt.column_text(1)] = stmt.column_int64(2);
  }
  return out;
}

}  // namespace atelier::jobs::reactions
