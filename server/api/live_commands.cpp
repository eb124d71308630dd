#include "server/api/live_commands.h"

namespace atelier::api {

namespace {

// Percent-encodes everything but RFC 3986's unreserved characters, for one path segment.
std::string encode_segment(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<int64_t> positive_id(const nlohmann::json& args, const char* name) {
  auto it = args.find(name);
  if (it == args.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) {
    return Status::invalid_argument(std::string("args.") + name + " must be a positive integer id",
                                    std::string("args.") + name);
  }
  return it->get<int64_t>();
}

Result<std::string> text_arg(const nlohmann::json& args, const char* name) {
  auto it = args.find(name);
  if (it == args.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Status::invalid_argument(std::string("args.") + name + " must be a non-empty string",
                                    std::string("args.") + name);
  }
  return it->get<std::string>();
}

http::Request make(http::Method method, std::string path, std::string body) {
  http::Request r;
  r.method = method;
  r.method_text = std::string(http::method_name(method));
  r.path = path;
  r.target = std::move(path);
  r.body = std::move(body);
  if (!r.body.empty()) r.headers.set("Content-Type", "application/json");
  return r;
}

}  // namespace

Result<http::Request> command_request(const std::string& op, const nlohmann::json& args) {
  if (!args.is_object()) return Status::invalid_argument("args must be an object", "args");
  if (op == "job.submit") {
    auto project = positive_id(args, "project");
    if (!project.is_ok()) return project.status();
    nlohmann::json body = args;
    body.erase("project");
    return make(http::Method::kPost, "/api/v1/projects/" + std::to_string(*project) + "/jobs",
                body.dump());
  }
  if (op == "job.cancel") {
    auto job = positive_id(args, "job");
    if (!job.is_ok()) return job.status();
    return make(http::Method::kPost, "/api/v1/jobs/" + std::to_string(*job) + "/cancel", "");
  }
  if (op == "reaction.set" || op == "reaction.clear") {
    auto image = positive_id(args, "image");
    if (!image.is_ok()) return image.status();
    auto emoji = text_arg(args, "emoji");
    if (!emoji.is_ok()) return emoji.status();
    return make(op == "reaction.set" ? http::Method::kPut : http::Method::kDelete,
                "/api/v1/images/" + std::to_string(*image) + "/reactions/" + encode_segment(*emoji),
                "");
  }
  return Status::invalid_argument(
      "unknown op '" + op + "'; one of job.submit, job.cancel, reaction.set, reaction.clear", "op");
}

std::string ack_json(const std::string& id, const http::Response& response) {
  nlohmann::json body = response.body.empty()
                            ? nlohmann::json::object()
                            : nlohmann::json::parse(response.body, nullptr, false);
  nlohmann::json ack = {{"type", "ack"}, {"id", id}};
  if (response.status >= 200 && response.status < 300) {
    ack["ok"] = true;
    ack["result"] = body.is_discarded() ? nlohmann::json::object() : body;
  } else {
    ack["ok"] = false;
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
      ack["error"] = body["error"];
    } else {
      ack["error"] = {
          {"code", "internal"},
          {"message", "the command failed with HTTP " + std::to_string(response.status)}};
    }
  }
  return ack.dump();
}

std::string ack_error_json(const std::string& id, std::string_view code, std::string_view message,
                           std::string_view field) {
  // The REST error shape, built by the one function that builds it.
  return ack_json(id, http::Response::error(400, code, message, field));
}

CommandLog::CommandLog(std::function<int64_t()> now_ms, int64_t ttl_ms, size_t max_entries)
    : now_ms_(std::move(now_ms)), ttl_ms_(ttl_ms), max_entries_(max_entries) {}

bool CommandLog::begin(int64_t user, const std::string& id, AckSink sink) {
  std::string ack;
  {
    MutexLock lock(mu_);
    const int64_t now = now_ms_();
    prune_locked(now);
    Key key{user, id};
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      entries_.emplace(key, Entry{now, false, {}, {std::move(sink)}});
      order_.push_back(std::move(key));
      return true;
    }
    if (!it->second.done) {
      it->second.waiting.push_back(std::move(sink));
      return false;
    }
    ack = it->second.ack;
  }
  sink(ack);  // outside the lock: a sink only queues, but it is not ours to hold the log
  return false;
}

void CommandLog::finish(int64_t user, const std::string& id, const std::string& ack) {
  std::vector<AckSink> waiting;
  {
    MutexLock lock(mu_);
    auto it = entries_.find(Key{user, id});
    if (it == entries_.end()) return;
    it->second.done = true;
    it->second.ack = ack;
    waiting = std::exchange(it->second.waiting, {});
  }
  for (auto& sink : waiting) sink(ack);
}

void CommandLog::prune_locked(int64_t now) {
  // Each entry is looked at most once per call, so a long-running command at the front only
  // moves to the back instead of holding up the pruning of the ones behind it.
  for (size_t budget = order_.size(); budget > 0 && !order_.empty(); --budget) {
    auto it = entries_.find(order_.front());
    if (it == entries_.end()) {
      order_.pop_front();
      continue;
    }
    const bool expired = now - it->second.at_ms >= ttl_ms_;
    const bool over = entries_.size() > max_entries_;
    if (!expired && !over) break;
    if (!it->second.done) {  // still running: its waiters need it
      order_.push_back(std::move(order_.front()));
      order_.pop_front();
      continue;
    }
    entries_.erase(it);
    order_.pop_front();
  }
}

size_t CommandLog::size() const {
  MutexLock lock(mu_);
  return entries_.size();
}

}  // namespace atelier::api
