#include "server/api/live_wire_json.h"

#include <chrono>
#include <nlohmann/json.hpp>

namespace atelier::api {

namespace {

// A JSON string literal for `text`, escaped as nlohmann::json writes it (bytes that are not
// UTF-8 become U+FFFD rather than failing the whole message).
void append_string(std::string& out, std::string_view text) {
  out += nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Whether `state` is the text of one JSON object, and nothing else.
bool is_object_text(std::string_view state) {
  return state.size() >= 2 && state.front() == '{' && state.back() == '}' &&
         nlohmann::json::accept(state);
}

}  // namespace

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

std::string LiveWireJson::progress(int64_t project, int64_t job, int step, int steps,
                                   rooms::StepTime at) const {
  const int64_t at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
  std::string out;
  out.reserve(112);
  out += R"({"at_us":)";
  out += std::to_string(at_us);
  out += R"(,"job":)";
  out += std::to_string(job);
  out += R"(,"project":)";
  out += std::to_string(project);
  out += R"(,"step":)";
  out += std::to_string(step);
  out += R"(,"steps":)";
  out += std::to_string(steps);
  out += R"(,"type":"progress"})";
  return out;
}

std::string LiveWireJson::presence(int64_t project,
                                   std::span<const rooms::PresenceMember> members) const {
  std::string out = R"({"members":[)";
  for (size_t i = 0; i < members.size(); ++i) {
    const rooms::PresenceMember& m = members[i];
    if (i > 0) out += ',';
    out += R"({"sessions":)";
    out += std::to_string(m.sessions);
    out += R"(,"state":)";
    out += is_object_text(m.state) ? std::string_view(m.state) : std::string_view("{}");
    out += R"(,"user":)";
    out += std::to_string(m.user);
    out += R"(,"username":)";
    append_string(out, m.username);
    out += '}';
  }
  out += R"(],"project":)";
  out += std::to_string(project);
  out += R"(,"type":"presence"})";
  return out;
}

std::string LiveWireJson::unsubscribed(int64_t project, std::string_view reason) const {
  std::string out = R"({"project":)";
  out += std::to_string(project);
  out += R"(,"reason":)";
  append_string(out, reason);
  out += R"(,"type":"unsubscribed"})";
  return out;
}

}  // namespace atelier::api
