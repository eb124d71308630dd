#include "server/api/event_json.h"

#include "server/api/api_json.h"
#include "server/api/job_json.h"

namespace atelier::api {

using events::overloaded;
using nlohmann::json;

std::string event_data_json(const events::DomainEvent& event) {
  json data = std::visit(
      overloaded{
          [](const events::ProjectCreated& e) {
            return json{{"name", e.name}};
          },
          [](const events::ProjectUpdated& e) {
            json changed = json::object();
            if (e.name) changed["name"] = *e.name;
            if (e.description) changed["description"] = *e.description;
            return changed;
          },
          [](const events::ProjectDeleted&) { return json::object(); },
          [](const events::MemberChanged& e) {
            json out = {{"user_id", e.user_id}};
            if (e.ends_membership()) return out;
            out["username"] = e.username;
            if (e.role) out["role"] = projects::role_name(*e.role);
            if (e.via) out["via"] = *e.via;
            return out;
          },
          [](const events::JobChanged& e) {
            return json{{"job", job_json(e.job)}};
          },
          [](const events::ReactionChanged& e) {
            return json{
                {"image", e.image}, {"emoji", e.emoji}, {"user", e.user}, {"counts", e.counts}};
          },
          [](const events::ImageUploaded& e) {
            return json{{"image", image_json(e.image)}};
          },
      },
      event);
  return data.dump();
}

json event_json(const projects::Event& e) {
  return {{"seq", e.seq},
          {"type", e.type},
          {"ts", format_time(e.ts)},
          {"actor", e.actor == 0 ? json(nullptr) : json(e.actor)},
          {"data", json::parse(e.data_json, nullptr, false)}};
}

std::string committed_event_json(const events::CommittedEvent& e) {
  return event_json(projects::Event{e.project_id, e.seq, std::string(events::event_type(e.event)),
                                    e.actor, e.data_json ? *e.data_json : std::string("{}"), e.at})
      .dump();
}

}  // namespace atelier::api
