// The `cmd` messages of the live protocol (proto/websocket.md): each op is translated into the
// REST request that does the same thing and run through the same router, so a command is
// authorized, validated and executed by exactly the code that serves REST. And the log that
// keeps a resent `cmd` from running twice.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "server/http/message.h"

namespace atelier::api {

// The REST request for `op` with `args` (method, path, JSON body), or kInvalidArgument naming
// the field ("op", "args.project", "args.image", ...). Headers are the caller's to add.
Result<http::Request> command_request(const std::string& op, const nlohmann::json& args);

// `{"type":"ack","id":...,"ok":true,"result":...}` for a 2xx answer, else
// `{"type":"ack","id":...,"ok":false,"error":{code, message, field?}}` with the REST error.
std::string ack_json(const std::string& id, const http::Response& response);
// An ack refusing the command before it ran (bad arguments).
std::string ack_error_json(const std::string& id, std::string_view code, std::string_view message,
                           std::string_view field);

// Commands seen in the last `ttl_ms`, per user and id. Thread-safe.
class CommandLog {
 public:
  using AckSink = std::function<void(const std::string& ack)>;

  CommandLog(std::function<int64_t()> now_ms, int64_t ttl_ms = 10 * 60 * 1000,
             size_t max_entries = 100'000);

  // True when this (user, id) is new: the caller runs it and calls finish(). Otherwise false,
  // and `sink` receives the first run's ack: at once if it has finished, else when it does.
  bool begin(int64_t user, const std::string& id, AckSink sink) ATELIER_EXCLUDES(mu_);
  // Records the ack and hands it to every sink waiting on it (the first one included).
  void finish(int64_t user, const std::string& id, const std::string& ack) ATELIER_EXCLUDES(mu_);
  size_t size() const ATELIER_EXCLUDES(mu_);

 private:
  using Key = std::pair<int64_t, std::string>;
  struct Entry {
    int64_t at_ms = 0;
    bool done = false;
    std::string ack;
    std::vector<AckSink> waiting;
  };
  // Drops entries older than the TTL, and finished ones beyond max_entries, oldest first.
  void prune_locked(int64_t now) ATELIER_REQUIRES(mu_);

  const std::function<int64_t()> now_ms_;
  const int64_t ttl_ms_;
  const size_t max_entries_;
  mutable Mutex mu_;
  std::map<Key, Entry> entries_ ATELIER_GUARDED_BY(mu_);
  std::deque<Key> order_ ATELIER_GUARDED_BY(mu_);  // insertion order, for pruning
};

}  // namespace atelier::api
