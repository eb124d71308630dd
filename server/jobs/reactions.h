// Emoji reactions to images: validation and the queries behind
// `PUT|DELETE /images/{id}/reactions/{emoji}` and the counts in image metadata.
//
// Contract: every function runs inside the caller's transaction on the given connection; set()
// and clear() inside a write transaction (the caller records the project event in the same
// one, so the event log and the table never disagree).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "common/status.h"
#include "server/store/sqlite.h"

namespace atelier::jobs::reactions {

// Longest emoji accepted, in bytes: room for ZWJ families and flags with skin tones.
constexpr size_t kMaxEmojiBytes = 32;

// OK when `emoji` looks like one emoji: 1..kMaxEmojiBytes of valid UTF-8 with no whitespace or
// control characters, made of non-ASCII code points, except a keycap ([0-9#*] then U+FE0F
// and/or U+20E3). kInvalidArgument naming the field "emoji" otherwise. It does not check
// against the Unicode emoji list: a new emoji must work without a server upgrade.
Status validate_emoji(std::string_view emoji);

// emoji -> how many members reacted with it.
using Counts = std::map<std::string, int64_t>;

// Adds `user`'s `emoji` to the image; false when it was already there (nothing changed).
Result<bool> set(store::Db& db, int64_t image_id, int64_t user_id, std::string_view emoji,
                 SysTime now);
// Removes it; false when it was not there.
Result<bool> clear(store::Db& db, int64_t image_id, int64_t user_id, std::string_view emoji);

Result<Counts> counts(store::Db& db, int64_t image_id);
// The emoji `user_id` reacted with on the image, sorted.
Result<std::vector<std::string>> mine(store::Db& db, int64_t image_id, int64_t user_id);
// Counts for several images (a page of a list) in one query; images without reactions are
// absent from the map.
Result<std::unordered_map<int64_t, Counts>> counts_for(store::Db& db,
                                                       std::span<const int64_t> image_ids);

}  // namespace atelier::jobs::reactions
