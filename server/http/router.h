// Router: maps (method, path) to handlers, with typed path parameters and a middleware chain.
//
// Handlers are asynchronous: they receive an Exchange and answer it (now or later, from any
// thread) with Exchange::respond. This lets a handler hand work to the store's writer thread or
// a job without ever blocking an I/O thread.
//
// Patterns are '/'-separated segments: literals, `{name}` (one non-empty segment, percent-decoded)
// or `{name:int}` (an id: a non-negative decimal int64 in canonical form, no sign or leading
// zeros; see parse_canonical_int64). A path whose shape matches a route but whose typed parameter
// does not parse gets 400 naming the parameter. When several routes match, the one with the most
// literal segments wins (`/jobs/new` beats `/jobs/{id}`). HEAD is served by GET routes; OPTIONS
// answers 204 with `Allow` for any known path; a known path with another method gets 405 + Allow.
//
// A route may carry its own request body limit (RouteOptions::max_body_bytes): the HTTP session
// asks body_limit() once the request header is read, before any body byte, so an upload route
// can take 20 MB while JSON routes keep the server-wide default.
#pragma once

#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "server/http/message.h"

namespace atelier::http {

class PathParams {
 public:
  void set(std::string name, std::string value);
  // Empty view when absent.
  std::string_view get(std::string_view name) const;
  // The value of an `{name:int}` parameter (already validated by the router).
  int64_t get_int(std::string_view name) const;
  size_t size() const { return values_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

// One request in flight, shared by middleware and the handler until it is answered.
class Exchange {
 public:
  using Sink = std::function<void(Response)>;
  using ResponseHook = std::function<void(Exchange&, Response&)>;

  // `sink` delivers the final response to the connection; it must be callable from any thread.
  Exchange(Request request, Sink sink);
  // A handler that drops the exchange without answering still gets the client a 500, so no
  // connection waits forever on a lost response.
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  Request& request() { return request_; }
  const Request& request() const { return request_; }
  const PathParams& params() const { return params_; }
  // The matched route's pattern ("/api/v1/jobs/{id:int}"), or a fixed label for unmatched
  // requests ("static", "unmatched"). Used for logs and metrics, never the raw path, so label
  // cardinality stays bounded.
  const std::string& route() const { return route_; }
  std::chrono::steady_clock::time_point started() const { return started_; }

  // Request id, set by the request-id middleware (echoed in `X-Request-Id`).
  std::string request_id;
  // Values middleware attaches for later stages (e.g. the authenticated principal).
  std::unordered_map<std::string, std::any> attributes;

  // Registers a hook that sees (and may amend) the response just before it is sent.
  // Hooks run in reverse registration order, like unwinding a stack of middleware.
  void on_response(ResponseHook hook) ATELIER_EXCLUDES(hooks_mu_);

  // Sends the response. Thread-safe; only the first call has any effect.
  void respond(Response response) ATELIER_EXCLUDES(hooks_mu_);
  bool responded() const { return responded_.load(); }

 private:
  friend class Router;
  Request request_;
  Sink sink_;
  PathParams params_;
  std::string route_ = "unmatched";
  std::chrono::steady_clock::time_point started_;
  Mutex hooks_mu_;
  std::vector<ResponseHook> hooks_ ATELIER_GUARDED_BY(hooks_mu_);
  std::atomic<bool> responded_{false};
};

using ExchangePtr = std::shared_ptr<Exchange>;
using Handler = std::function<void(const ExchangePtr&)>;
using Next = std::function<void()>;
// Middleware either calls `next()` to continue the chain or responds itself to stop it.
using Middleware = std::function<void(const ExchangePtr&, const Next& next)>;

struct RouteOptions {
  // The largest request body this route accepts (larger or smaller than the server's
  // max_body_bytes); nullopt: the server's.
  std::optional<uint64_t> max_body_bytes;
};

class Router {
 public:
  struct RouteInfo {
    Method method;
    std::string pattern;
  };

  // Registers a route. Returns an error for a malformed pattern (or one of more than
  // kMaxSegments segments) or a duplicate (method, pattern).
  Status add(Method method, std::string_view pattern, Handler handler, RouteOptions options = {});
  // Adds middleware; it runs, in order of addition, for every request (matched or not).
  void use(Middleware middleware);
  // Handles GET/HEAD requests that match no route (static files). Without it they get 404.
  void set_fallback(Handler handler);

  // Matches the request, runs the middleware chain, then the handler (or a 404/405/400 answer).
  // Exceptions thrown by middleware or handlers become a 500 response.
  void dispatch(const ExchangePtr& exchange) const;

  // The body limit of the route `dispatch` would run for (method, target): matched on the path
  // alone (the query is ignored; HEAD is served by GET routes); nullopt when that route has none
  // or no route matches (405, 404, bad parameters, the fallback): the server's default applies.
  // Costs: one pass over the routes with no allocation. Thread-safe once routes are added.
  std::optional<uint64_t> body_limit(Method method, std::string_view target) const;

  std::vector<RouteInfo> routes() const;

  static constexpr size_t kMaxSegments = 32;

 private:
  struct Segment {
    enum Kind { kLiteral, kString, kInt } kind;
    std::string text;  // literal text or parameter name
  };
  struct Route {
    Method method;
    std::string pattern;
    std::vector<Segment> segments;
    int literal_count = 0;
    Handler handler;
    RouteOptions options;
  };

  // The decision for one request: which handler runs and with what parameters.
  struct Match {
    const Route* route = nullptr;
    PathParams params;
    std::optional<Response> early;  // 400/404/405/204 decided by the router itself
    bool use_fallback = false;
  };
  Match match(const Request& request) const;
  void run_chain(const ExchangePtr& exchange, size_t index,
                 const std::shared_ptr<const Handler>& final) const;

  std::vector<Route> routes_;
  std::vector<Middleware> middleware_;
  Handler fallback_;
};

}  // namespace atelier::http
