#include "server/http/websocket.h"

namespace atelier::http {

namespace {

// Whether the comma-separated header value names `token` (case-insensitively).
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

bool is_websocket_upgrade(const Request& request) {
  if (request.method != Method::kGet || request.version < 11) return false;
  auto upgrade = request.headers.get("Upgrade");
  auto connection = request.headers.get("Connection");
  auto key = request.headers.get("Sec-WebSocket-Key");
  auto version = request.headers.get("Sec-WebSocket-Version");
  return upgrade && has_token(*upgrade, "websocket") && connection &&
         has_token(*connection, "upgrade") && key && !key->empty() && version && *version == "13";
}

}  // namespace atelier::http
