#include "server/api/query_params.h"

#include <algorithm>
#include <optional>
#include <string>

namespace atelier::api {

Result<int64_t> query_int(const http::Request& request, std::string_view name, int64_t fallback,
                          int64_t lo, int64_t hi, AboveMax above) {
  auto text = request.query_param(name);
  if (!text || text->empty()) return fallback;
  // Canonical only ("01", "+1" are refused): ids and cursors have one spelling.
  const std::optional<int64_t> parsed = http::parse_canonical_int64(*text);
  const int64_t value = parsed.value_or(0);
  const bool refused_above = above == AboveMax::kRefuse && value > hi;
  if (!parsed || value < lo || refused_above) {
    std::string range = above == AboveMax::kRefuse
                            ? "from " + std::to_string(lo) + " to " + std::to_string(hi)
                            : "of at least " + std::to_string(lo);
    return Status::invalid_argument(
        "query parameter '" + std::string(name) + "' must be an integer " + range,
        std::string(name));
  }
  return std::min(value, hi);
}

Result<std::optional<int64_t>> query_before(const http::Request& request) {
  auto text = request.query_param("before");
  if (!text || text->empty()) return std::optional<int64_t>();
  auto value = query_int(request, "before", 0, 1, INT64_MAX);
  if (!value.is_ok()) return value.status();
  return std::optional<int64_t>(*value);
}

Result<PageQuery> query_page(const http::Request& request) {
  PageQuery page;
  ATELIER_ASSIGN_OR_RETURN(page.limit,
                           query_int(request, "limit", kDefaultPageSize, 1, kMaxPageSize));
  ATELIER_ASSIGN_OR_RETURN(page.before, query_before(request));
  return page;
}

}  // namespace atelier::api
