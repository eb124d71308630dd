// LiveWire: the bytes of the messages a room sends (proto/websocket.md, "Server to client").
//
// Rooms decide what to say: which job advanced and when, who is present with how many sessions
// and which state, why a subscription ended. The API layer decides how it is written
// (server/api/live_wire_json.h), so the WebSocket wire format lives in one place with the rest of
// the API's JSON, and nothing under server/rooms/ builds or parses it. Each message is written
// once per broadcast and its bytes shared by every session.
//
// Contract: implementations are immutable and thread-safe, take no lock and call nothing back:
// rooms call them from any thread (the feed thread, a worker, a connection's strand), with no
// lock of their own held.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace atelier::rooms {

// When a worker reported a step (sent as `at_us`, Unix time in microseconds).
using StepTime = std::chrono::system_clock::time_point;

// One user in a project's presence: the union of their sessions in the room.
struct PresenceMember {
  int64_t user = 0;
  std::string username;
  // What one of their sessions said it is doing: the text the API handed Room::set_presence()
  // (a JSON object it checked), opaque here; empty when none of them said anything.
  std::string state;
  int sessions = 0;
};

class LiveWire {
 public:
  virtual ~LiveWire() = default;

  // `{"type":"event","project":P,"event":<event_json>}`: a durable event, its wire form (the
  // object GET /projects/{id}/events lists) carried as it is, so that a live event and a
  // replayed one are the same bytes.
  virtual std::string event(int64_t project, std::string_view event_json) const = 0;
  // `progress`: job `job` of `project` reached `step` of `steps` at `at`.
  virtual std::string progress(int64_t project, int64_t job, int step, int steps,
                               StepTime at) const = 0;
  // `presence`: everyone in the project's room, in the order given.
  virtual std::string presence(int64_t project, std::span<const PresenceMember> members) const = 0;
  // `unsubscribed`: the room ended a subscription to `project`, for `reason` ("removed", "left",
  // "project_deleted").
  virtual std::string unsubscribed(int64_t project, std::string_view reason) const = 0;
};

}  // namespace atelier::rooms
