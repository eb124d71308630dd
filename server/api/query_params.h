// Integer query parameters (?limit=, ?before=, ?size=), read the same way on every route: absent
// or empty means "not given", anything else must be a decimal integer in canonical form (no '+',
// no leading zeros: http::parse_canonical_int64), and a bad one is a 400 naming the parameter.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "server/http/message.h"

namespace atelier::api {

// What a value above the maximum means: a page size asks for "as many as allowed" (kCap), a
// thumbnail size beyond the largest is a mistake (kRefuse).
enum class AboveMax { kCap, kRefuse };

// The parameter `name`, or `fallback` when absent or empty. Not an integer, or below `lo`:
// kInvalidArgument naming it; above `hi`: capped to `hi` or refused, per `above`.
Result<int64_t> query_int(const http::Request& request, std::string_view name, int64_t fallback,
                          int64_t lo, int64_t hi, AboveMax above = AboveMax::kCap);

// The `before` cursor of newest-first lists: nullopt when absent or empty, else an id >= 1.
Result<std::optional<int64_t>> query_before(const http::Request& request);

// One page of a newest-first list (projects, members, tokens; jobs and images read the same
// parameters): ?limit= (kDefaultPageSize when absent, at least 1, above kMaxPageSize read as
// kMaxPageSize) and the ?before= cursor. A bad one is a 400 naming it.
inline constexpr int64_t kDefaultPageSize = 50;
inline constexpr int64_t kMaxPageSize = 200;
struct PageQuery {
  int64_t limit = kDefaultPageSize;
  std::optional<int64_t> before;
};
Result<PageQuery> query_page(const http::Request& request);

}  // namespace atelier::api
