#include "server/rooms/room.h"

#include <map>

namespace atelier::rooms {

namespace {

OutMessage text(std::string payload, OutMessage::Kind kind, std::string key = {}) {
  return OutMessage{std::make_shared<const std::string>(std::move(payload)), false, kind,
                    std::move(key)};
}

}  // namespace

std::vector<std::shared_ptr<RoomMember>> Room::live_locked() {
  std::vector<std::shared_ptr<RoomMember>> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (auto m = it->second.member.lock()) {
      out.push_back(std::move(m));
      ++it;
    } else {
      it = entries_.erase(it);
    }
  }
  return out;
}

void Room::send_all(const OutMessage& message) {
  std::vector<std::shared_ptr<RoomMember>> targets;
  {
    MutexLock lock(mu_);
    targets = live_locked();
  }
  // Outside the lock: a member's deliver() only posts, but it is not ours to hold the room.
  for (const auto& m : targets) m->deliver(message);
}

void Room::join(const std::shared_ptr<RoomMember>& member) {
  {
    MutexLock lock(mu_);
    if (entries_.contains(member.get())) return;
    entries_[member.get()] = Entry{member, member->user_id(), member->username(), {}};
  }
  presence_changed();
}

void Room::leave(const RoomMember* member) {
  {
    MutexLock lock(mu_);
    if (entries_.erase(member) == 0) return;
  }
  // Even when the user is still here through another session, its count or state changed.
  presence_changed();
}

size_t Room::remove_user(int64_t user_id, const std::string& reason) {
  return remove_if([user_id](int64_t user) { return user == user_id; }, reason);
}

size_t Room::remove_all(const std::string& reason) {
  return remove_if([](int64_t) { return true; }, reason);
}

size_t Room::remove_if(const std::function<bool(int64_t user)>& pred, const std::string& reason) {
  std::vector<std::shared_ptr<RoomMember>> removed;
  {
    MutexLock lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (pred(it->second.user)) {
        if (auto m = it->second.member.lock()) removed.push_back(std::move(m));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (removed.empty()) return 0;
  OutMessage out = text(wire_->unsubscribed(project_, reason), OutMessage::Kind::kDurable);
  for (const auto& m : removed) m->deliver(out);
  presence_changed();
  return removed.size();
}

OutMessage event_out(const LiveWire& wire, int64_t project, int64_t seq,
                     const std::string& event_json) {
  OutMessage out = text(wire.event(project, event_json), OutMessage::Kind::kDurable);
  out.seq = seq;
  return out;
}

OutMessage progress_out(const LiveWire& wire, int64_t project, int64_t job, int step, int steps,
                        StepTime at) {
  return text(wire.progress(project, job, step, steps, at), OutMessage::Kind::kEphemeral,
              "progress " + std::to_string(project) + " " + std::to_string(job));
}

OutMessage preview_out(int64_t project, int64_t job, std::shared_ptr<const std::string> frame) {
  return OutMessage{std::move(frame), true, OutMessage::Kind::kEphemeral,
                    "preview " + std::to_string(project) + " " + std::to_string(job)};
}

void Room::broadcast_event(int64_t seq, const std::string& event_json) {
  send_all(event_out(*wire_, project_, seq, event_json));
}

void Room::broadcast_progress(int64_t job, int step, int steps, StepTime at) {
  send_all(progress_out(*wire_, project_, job, step, steps, at));
}

void Room::broadcast_preview(int64_t job, std::shared_ptr<const std::string> frame) {
  send_all(preview_out(project_, job, std::move(frame)));
}

void Room::broadcast_batch(std::span<const OutMessage> messages, const LateMessages& late) {
  if (messages.empty()) return;
  std::vector<std::shared_ptr<RoomMember>> targets;
  {
    MutexLock lock(mu_);
    targets = live_locked();
  }
  if (!late) {
    for (const auto& m : targets) m->deliver_batch(messages);
    return;
  }
  // Messages that came in during the pass, each with the first session that got it in the pass.
  std::vector<OutMessage> batch(messages.begin(), messages.end());
  std::vector<size_t> first_session;  // of batch[messages.size() + k]
  constexpr size_t kAskEvery = 32;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (i % kAskEvery == kAskEvery - 1) {
      late(batch);
      first_session.resize(batch.size() - messages.size(), i);
    }
    targets[i]->deliver_batch(batch);
  }
  // The sessions reached before a late message came in get it now, in the order it came.
  std::vector<OutMessage> rest;
  for (size_t i = 0; i < targets.size() && !first_session.empty(); ++i) {
    rest.clear();
    for (size_t k = 0; k < first_session.size(); ++k) {
      if (first_session[k] > i) rest.push_back(batch[messages.size() + k]);
    }
    if (rest.empty()) break;  // first_session only grows: nobody further on misses any
    targets[i]->deliver_batch(rest);
  }
}

void Room::set_presence(const RoomMember* member, std::string state) {
  {
    MutexLock lock(mu_);
    auto it = entries_.find(member);
    if (it == entries_.end()) return;
    it->second.state = std::move(state);
  }
  presence_changed();
}

std::vector<PresenceMember> Room::presence_locked() const {
  // One member per user, by id: its sessions counted, and the state of one of them that has one.
  std::map<int64_t, PresenceMember> users;
  for (const auto& [ptr, e] : entries_) {
    if (e.member.expired()) continue;
    PresenceMember& u = users[e.user];
    u.user = e.user;
    u.username = e.username;
    ++u.sessions;
    if (!e.state.empty()) u.state = e.state;
  }
  std::vector<PresenceMember> out;
  out.reserve(users.size());
  for (auto& [id, u] : users) out.push_back(std::move(u));
  return out;
}

std::string Room::presence_json() const {
  std::vector<PresenceMember> members;
  {
    MutexLock lock(mu_);
    members = presence_locked();
  }
  return wire_->presence(project_, members);
}

void Room::presence_changed() {
  if (deferred_presence_) {
    presence_dirty_ = true;
  } else {
    announce_presence();
  }
}

void Room::announce_presence_if_changed() {
  if (presence_dirty_.exchange(false)) announce_presence();
}

void Room::announce_presence() {
  send_all(
      text(presence_json(), OutMessage::Kind::kEphemeral, "presence " + std::to_string(project_)));
}

size_t Room::size() const {
  // Sessions leave explicitly (and dead ones are pruned on the next broadcast), so the count of
  // entries is exact enough and O(1): the hub asks on every step of every job.
  MutexLock lock(mu_);
  return entries_.size();
}

}  // namespace atelier::rooms
