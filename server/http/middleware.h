// Standard middleware for every request: request ids, access logging with metrics, and CORS.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/mutex.h"
#include "server/http/router.h"

namespace atelier::http {

// Accepts a client's `X-Request-Id` when it is 1-64 characters of [A-Za-z0-9._-], else makes
// one; stores it in Exchange::request_id and echoes it in the response. Every response also gets
// X-Content-Type-Options: nosniff.
Middleware request_id_middleware();

// `path` with every segment that holds a server-minted secret ("atl_...") masked, for logs.
std::string redact_secrets(std::string_view path);

// Records one finished request: an access-log line (method, path, route, status, duration,
// request id, remote address; never headers or bodies, which may hold secrets) and metrics
// (requests by route/method/status, latency by route). Thread-safe.
class RequestRecorder {
 public:
  explicit RequestRecorder(metrics::Registry* registry) : registry_(registry) {}
  void record(const Request& request, const std::string& route, int status, double seconds,
              const std::string& request_id) ATELIER_EXCLUDES(mu_);
  // Middleware that calls record() when the response is sent.
  Middleware middleware();

 private:
  struct Series {
    metrics::Counter* requests;
    metrics::Histogram* latency;
  };
  // The registry's series for one (route, method, status), looked up there once: building
  // label strings on every request cost more than the rest of the request path.
  Series series(const std::string& route, Method method, int status) ATELIER_EXCLUDES(mu_);

  metrics::Registry* registry_;
  SharedMutex mu_;
  // key: method \x1f status \x1f route
  std::unordered_map<std::string, Series> cache_ ATELIER_GUARDED_BY(mu_);
};

// CORS is off unless origins are configured. With origins: preflight OPTIONS from an allowed
// origin gets 204 with the allow headers; responses to allowed origins get
// Access-Control-Allow-Origin + Vary: Origin. Requests from other origins are not blocked here
// (the browser enforces CORS; the auth layer checks Origin on unsafe requests).
Middleware cors_middleware(std::vector<std::string> allowed_origins);

}  // namespace atelier::http
