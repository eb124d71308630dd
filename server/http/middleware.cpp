#include "server/http/middleware.h"

#include <algorithm>
#include <atomic>
#include <random>

#include "common/logging.h"

namespace atelier::http {

namespace {

bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

// A per-process random prefix plus a counter: unique, cheap, and unguessable enough for logs.
std::string next_request_id() {
  static const std::string prefix = [] {
    std::random_device rd;
    return fmt::format("{:08x}", rd());
  }();
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}-{}", prefix, counter.fetch_add(1) + 1);
}

}  // namespace

std::string redact_secrets(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  size_t i = 0;
  while (i <= path.size()) {
    size_t slash = path.find('/', i);
    std::string_view seg = path.substr(i, slash == std::string_view::npos ? path.npos : slash - i);
    // Every secret the server mints starts with "atl_" (sessions, tokens, invite codes).
    if (seg.size() > 6 && seg.substr(0, 4) == "atl_") {
      out += seg.substr(0, 6);
      out += "[redacted]";
    } else {
      out += seg;
    }
    if (slash == std::string_view::npos) break;
    out += '/';
    i = slash + 1;
  }
  return out;
}

Middleware request_id_middleware() {
  return [](const ExchangePtr& ex, const Next& next) {
    auto given = ex->request().headers.get("X-Request-Id");
    ex->request_id =
        given && acceptable_request_id(*given) ? std::string(*given) : next_request_id();
    ex->on_response([](Exchange& e, Response& r) {
      r.headers.set("X-Request-Id", e.request_id);
      // No response is ever to be read as another type than it says (JSON as HTML, say).
      r.headers.set("X-Content-Type-Options", "nosniff");
    });
    next();
  };
}

RequestRecorder::Series RequestRecorder::series(const std::string& route, Method method,
                                                int status) {
  std::string key;
  key.reserve(route.size() + 12);
  key += method_name(method);
  key += '\x1f';
  key += std::to_string(status);
  key += '\x1f';
  key += route;
  {
    ReaderMutexLock lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  Series s{&registry_->counter("atelier_http_requests_total",
                               "HTTP requests by route, method and status",
                               {{"route", route},
                                {"method", std::string(method_name(method))},
                                {"status", std::to_string(status)}}),
           &registry_->histogram("atelier_http_request_duration_seconds",
                                 "HTTP request latency by route, from full request to response",
                                 {{"route", route}})};
  WriterMutexLock lock(mu_);
  cache_.emplace(std::move(key), s);
  return s;
}

void RequestRecorder::record(const Request& request, const std::string& route, int status,
                             double seconds, const std::string& request_id) {
  if (registry_) {
    // Unknown methods share one label value, so clients cannot mint label values at will.
    Series s = series(route, request.method, status);
    s.requests->inc();
    s.latency->observe(seconds);
  }
  if (log::enabled(log::Level::kInfo)) {
    // The path without its query string (queries may carry secrets), and with secret path
    // segments (invite codes in /invites/{code}/accept) masked.
    std::string path = redact_secrets(request.path);
    log::write(log::Level::kInfo, "request",
               {{"method", std::string_view(request.method_text)},
                {"path", std::string_view(path)},
                {"route", std::string_view(route)},
                {"status", static_cast<int64_t>(status)},
                {"duration_ms", seconds * 1000.0},
                {"request_id", std::string_view(request_id)},
                {"remote", std::string_view(request.remote_address)}});
  }
}

Middleware RequestRecorder::middleware() {
  return [this](const ExchangePtr& ex, const Next& next) {
    ex->on_response([this](Exchange& e, Response& r) {
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - e.started()).count();
      record(e.request(), e.route(), r.status, seconds, e.request_id);
    });
    next();
  };
}

Middleware cors_middleware(std::vector<std::string> allowed_origins) {
  return [origins = std::move(allowed_origins)](const ExchangePtr& ex, const Next& next) {
    if (origins.empty()) return next();
    auto origin = ex->request().headers.get("Origin");
    bool allowed = origin && std::find(origins.begin(), origins.end(), *origin) != origins.end();
    if (!allowed) return next();
    std::string allow_origin(*origin);
    if (ex->request().method == Method::kOptions &&
        ex->request().headers.has("Access-Control-Request-Method")) {
      Response r;
      r.status = 204;
      r.headers.set("Access-Control-Allow-Origin", allow_origin);
      r.headers.set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
      r.headers.set("Access-Control-Allow-Headers",
                    "Authorization, Content-Type, Idempotency-Key, X-Request-Id");
      r.headers.set("Access-Control-Allow-Credentials", "true");
      r.headers.set("Access-Control-Max-Age", "600");
      r.headers.set("Vary", "Origin");
      return ex->respond(std::move(r));
    }
    ex->on_response([allow_origin](Exchange&, Response& r) {
      r.headers.set("Access-Control-Allow-Origin", allow_origin);
      r.headers.set("Access-Control-Allow-Credentials", "true");
      r.headers.set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
      r.headers.set("Vary", "Origin");
    });
    next();
  };
}

}  // namespace atelier::http
