#include "server/api/live_wire_json.h"

#include <chrono>
#include <nlohmann/json.hpp>

namespace atelier::api {

std::string event_message(int64_t project, std::string_view event_json) {
  std::string out;
  out.reserve(event_json.size() + 48);
  out += R"({"type":"event","project":)";
  out += std::to_string(project);
  out += R"(,"event":)";
  out += event_json;
  out += '}';
  return out;
}

std::string LiveWireJson::event(int64_t project, std::string_view event_json) const {
  return event_message(project, event_json);
}

// nlohmann writes the keys in order and escapes the strings; bytes that are not UTF-8 (a
// username) become U+FFFD rather than failing the whole message.
namespace {
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

std::string LiveWireJson::progress(int64_t project, int64_t job, int step, int steps,
                                   rooms::StepTime at) const {
  const auto at_us = std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch());
  return dump({{"type", "progress"},
               {"project", project},
               {"job", job},
               {"step", step},
               {"steps", steps},
               {"at_us", at_us.count()}});
}

std::string LiveWireJson::presence(int64_t project,
                                   std::span<const rooms::PresenceMember> members) const {
  nlohmann::json list = nlohmann::json::array();
  for (const rooms::PresenceMember& m : members) {
    // The API checked the state when the session set it; anything but an object is sent as {}.
    nlohmann::json state = nlohmann::json::parse(m.state, nullptr, false);
    if (!state.is_object()) state = nlohmann::json::object();
    list.push_back({{"user", m.user},
                    {"username", m.username},
                    {"state", std::move(state)},
                    {"sessions", m.sessions}});
  }
  return dump({{"type", "presence"}, {"project", project}, {"members", std::move(list)}});
}

std::string LiveWireJson::unsubscribed(int64_t project, std::string_view reason) const {
  return dump({{"type", "unsubscribed"}, {"project", project}, {"reason", reason}});
}

}  // namespace atelier::api
