#include "server/http/router.h"

#include <array>
#include <charconv>
#include <exception>

#include "common/logging.h"

namespace atelier::http {

void PathParams::set(std::string name, std::string value) {
  values_.emplace_back(std::move(name), std::move(value));
}

std::string_view PathParams::get(std::string_view name) const {
  for (const auto& [k, v] : values_) {
    if (k == name) return v;
  }
  return {};
}

int64_t PathParams::get_int(std::string_view name) const {
  std::string_view v = get(name);
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

Exchange::Exchange(Request request, Sink sink)
    : request_(std::move(request)),
      sink_(std::move(sink)),
      started_(std::chrono::steady_clock::now()) {
  hooks_.reserve(4);  // the standard middleware adds two; avoid regrowing per request
}

Exchange::~Exchange() {
  if (!responded_.load()) {
    log::error("no response produced for {} {} (route {})", request_.method_text, request_.path,
               route_);
    respond(Response::error(500, "internal", "the server produced no response"));
  }
}

void Exchange::on_response(ResponseHook hook) {
  MutexLock lock(hooks_mu_);
  hooks_.push_back(std::move(hook));
}

void Exchange::respond(Response response) {
  if (responded_.exchange(true)) return;
  std::vector<ResponseHook> hooks;
  {
    MutexLock lock(hooks_mu_);
    hooks.swap(hooks_);
  }
  for (auto it = hooks.rbegin(); it != hooks.rend(); ++it) (*it)(*this, response);
  sink_(std::move(response));
}

namespace {

// Splits "/a/b/c" into {"a","b","c"}; "/" into {}. Keeps empty segments ("/a//b") so that such
// paths match nothing rather than being silently normalised.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path == "/") return out;
  if (path.front() == '/') path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// `{name:int}` parameters are ids: canonical and without sign ("/projects/01", "/projects/+1"
// and "/projects/-1" name nothing, so they are refused rather than read as another spelling).
bool parse_id(std::string_view s, int64_t& out) {
  if (s.starts_with('-')) return false;
  auto v = parse_canonical_int64(s);
  if (v) out = *v;
  return v.has_value();
}

// Path segments as views, for body_limit(): like split_path() but into a fixed array. Returns
// the segment count, or kMaxSegments + 1 when there are more (no route can match those).
size_t split_path_into(std::string_view path,
                       std::array<std::string_view, Router::kMaxSegments>& out) {
  if (path.empty() || path == "/") return 0;
  if (path.front() == '/') path.remove_prefix(1);
  size_t n = 0;
  while (true) {
    if (n == out.size()) return out.size() + 1;
    size_t slash = path.find('/');
    out[n++] = path.substr(0, slash);
    if (slash == std::string_view::npos) return n;
    path.remove_prefix(slash + 1);
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `seg` one character at a time into `sink(char)` (false from it stops early),
// without allocating. False for a malformed escape, as percent_decode() refuses it.
template <class Sink>
bool for_each_decoded(std::string_view seg, Sink&& sink) {
  for (size_t i = 0; i < seg.size(); ++i) {
    char c = seg[i];
    if (c == '%') {
      if (i + 2 >= seg.size()) return false;
      int hi = hex_digit(seg[i + 1]), lo = hex_digit(seg[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (!sink(c)) return true;
  }
  return true;
}

bool valid_escapes(std::string_view seg) {
  return seg.find('%') == std::string_view::npos ||
         for_each_decoded(seg, [](char) { return true; });
}

bool decoded_equals(std::string_view seg, std::string_view literal) {
  if (seg.find('%') == std::string_view::npos) return seg == literal;
  size_t at = 0;
  bool same = true;
  for_each_decoded(seg, [&](char c) {
    same = at < literal.size() && literal[at] == c;
    ++at;
    return same;
  });
  return same && at == literal.size();
}

// Whether `seg`, decoded, is an id that parse_id() accepts. Ids have at most 19 digits, so a
// small buffer holds any candidate.
bool decoded_is_id(std::string_view seg) {
  std::array<char, 24> buf;
  size_t len = 0;
  bool fits = true;
  for_each_decoded(seg, [&](char c) {
    fits = len < buf.size();
    if (fits) buf[len++] = c;
    return fits;
  });
  int64_t unused;
  return fits && parse_id(std::string_view(buf.data(), len), unused);
}

std::string allow_header(const std::vector<Method>& methods) {
  bool has_get = false, has_head = false;
  for (Method m : methods) {
    has_get |= m == Method::kGet;
    has_head |= m == Method::kHead;
  }
  std::string out;
  auto append = [&](std::string_view name) {
    if (out.find(name) != std::string::npos) return;
    if (!out.empty()) out += ", ";
    out += name;
  };
  for (Method m : methods) append(method_name(m));
  if (has_get && !has_head) append("HEAD");
  append("OPTIONS");
  return out;
}

}  // namespace

Status Router::add(Method method, std::string_view pattern, Handler handler, RouteOptions options) {
  if (pattern.empty() || pattern.front() != '/') {
    return Status::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  Route route{method, std::string(pattern), {}, 0, std::move(handler), options};
  const std::vector<std::string_view> segments = split_path(pattern);
  if (segments.size() > kMaxSegments) {
    return Status::invalid_argument("route pattern has more than " + std::to_string(kMaxSegments) +
                                    " segments: " + route.pattern);
  }
  for (std::string_view seg : segments) {
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      std::string_view inner = seg.substr(1, seg.size() - 2);
      size_t colon = inner.find(':');
      std::string_view name = inner.substr(0, colon);
      std::string_view type = colon == std::string_view::npos ? "" : inner.substr(colon + 1);
      if (name.empty()) return Status::invalid_argument("empty parameter name in " + route.pattern);
      Segment::Kind kind;
      if (type.empty() || type == "str") {
        kind = Segment::kString;
      } else if (type == "int") {
        kind = Segment::kInt;
      } else {
        return Status::invalid_argument("unknown parameter type '" + std::string(type) + "' in " +
                                        route.pattern);
      }
      route.segments.push_back({kind, std::string(name)});
    } else {
      if (seg.empty()) return Status::invalid_argument("empty segment in " + route.pattern);
      route.segments.push_back({Segment::kLiteral, std::string(seg)});
      ++route.literal_count;
    }
  }
  for (const Route& r : routes_) {
    if (r.method == method && r.pattern == route.pattern) {
      return Status::already_exists("duplicate route " + std::string(method_name(method)) + " " +
                                    route.pattern);
    }
  }
  routes_.push_back(std::move(route));
  return Status::ok();
}

void Router::use(Middleware middleware) {
  middleware_.push_back(std::move(middleware));
}

void Router::set_fallback(Handler handler) {
  fallback_ = std::move(handler);
}

std::vector<Router::RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  for (const Route& r : routes_) out.push_back({r.method, r.pattern});
  return out;
}

// The same decision as match() makes for a route, on views of the path and without building
// parameters: the segments' shapes and types, then the most literal segments (first added on a
// tie) among the routes of the wanted method.
std::optional<uint64_t> Router::body_limit(Method method, std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  std::array<std::string_view, kMaxSegments> segs;
  const size_t n = split_path_into(path, segs);
  if (n > kMaxSegments) return std::nullopt;
  for (size_t i = 0; i < n; ++i) {
    if (!valid_escapes(segs[i])) return std::nullopt;  // match() answers 400
  }
  const Method want = method == Method::kHead ? Method::kGet : method;
  const Route* best = nullptr;
  for (const Route& route : routes_) {
    if (route.method != want || route.segments.size() != n) continue;
    if (best && route.literal_count <= best->literal_count) continue;
    bool fits = true;
    for (size_t i = 0; i < n && fits; ++i) {
      const Segment& s = route.segments[i];
      switch (s.kind) {
        case Segment::kLiteral:
          fits = decoded_equals(segs[i], s.text);
          break;
        case Segment::kString:
          fits = !segs[i].empty();  // valid escapes: decoded empty only when raw is
          break;
        case Segment::kInt:
          fits = decoded_is_id(segs[i]);
          break;
      }
    }
    if (fits) best = &route;
  }
  return best ? best->options.max_body_bytes : std::nullopt;
}

Router::Match Router::match(const Request& request) const {
  Match result;
  std::vector<std::string_view> segs = split_path(request.path);
  // Segments are percent-decoded only when they hold an escape, which most paths never do.
  std::vector<std::string> decoded;
  decoded.reserve(segs.size());  // no reallocation: `segs` keeps views into it
  for (std::string_view& seg : segs) {
    if (seg.find('%') == std::string_view::npos) continue;
    auto d = percent_decode(seg);
    if (!d) {
      result.early = Response::error(400, "bad_path", "malformed percent-encoding in path", "path");
      return result;
    }
    decoded.push_back(std::move(*d));
    seg = decoded.back();
  }

  const Method want = request.method == Method::kHead ? Method::kGet : request.method;
  const Route* best = nullptr;
  PathParams best_params;
  std::optional<Response> param_error;
  std::vector<Method> allowed;  // methods of routes whose shape and types fit this path

  for (const Route& route : routes_) {
    if (route.segments.size() != segs.size()) continue;
    PathParams params;
    bool shape_ok = true;
    std::optional<Response> type_error;
    for (size_t i = 0; i < segs.size() && shape_ok; ++i) {
      const Segment& s = route.segments[i];
      switch (s.kind) {
        case Segment::kLiteral:
          shape_ok = segs[i] == s.text;
          break;
        case Segment::kString:
          shape_ok = !segs[i].empty();
          if (shape_ok) params.set(s.text, std::string(segs[i]));
          break;
        case Segment::kInt: {
          int64_t v;
          if (!parse_id(segs[i], v)) {
            if (!type_error) {
              type_error = Response::error(400, "invalid_parameter",
                                           "path parameter '" + s.text +
                                               "' must be a decimal integer without sign or "
                                               "leading zeros",
                                           s.text);
            }
          } else {
            params.set(s.text, std::string(segs[i]));
          }
          break;
        }
      }
    }
    if (!shape_ok) continue;
    if (type_error) {
      if (route.method == want && !param_error) param_error = std::move(type_error);
      continue;
    }
    allowed.push_back(route.method);
    if (route.method == want && (!best || route.literal_count > best->literal_count)) {
      best = &route;
      best_params = std::move(params);
    }
  }

  if (best) {
    result.route = best;
    result.params = std::move(best_params);
    return result;
  }
  if (!allowed.empty()) {
    Response r;
    if (request.method == Method::kOptions) {
      r.status = 204;
    } else {
      r = Response::error(405, "method_not_allowed",
                          "method " + request.method_text + " is not allowed on this path");
    }
    r.headers.set("Allow", allow_header(allowed));
    result.early = std::move(r);
    return result;
  }
  if (param_error) {
    result.early = std::move(param_error);
    return result;
  }
  if (fallback_ && (request.method == Method::kGet || request.method == Method::kHead)) {
    result.use_fallback = true;
    return result;
  }
  result.early = Response::error(404, "not_found", "no such resource");
  return result;
}

void Router::dispatch(const ExchangePtr& exchange) const {
  Match m = match(exchange->request());
  Handler final;
  if (m.route) {
    exchange->route_ = m.route->pattern;
    exchange->params_ = std::move(m.params);
    final = m.route->handler;
  } else if (m.use_fallback) {
    exchange->route_ = "static";
    final = fallback_;
  } else {
    exchange->route_ = "unmatched";
    final = [resp = std::move(*m.early)](const ExchangePtr& ex) mutable { ex->respond(resp); };
  }
  // Shared so that middleware may call next() later, after dispatch has returned.
  run_chain(exchange, 0, std::make_shared<const Handler>(std::move(final)));
}

void Router::run_chain(const ExchangePtr& exchange, size_t index,
                       const std::shared_ptr<const Handler>& final) const {
  try {
    if (index < middleware_.size()) {
      middleware_[index](exchange,
                         [this, exchange, index, final] { run_chain(exchange, index + 1, final); });
    } else {
      (*final)(exchange);
    }
  } catch (const std::exception& e) {
    // Only the innermost frame answers; outer frames see responded() and stay silent.
    if (!exchange->responded()) {
      log::error("handler for {} {} threw: {}", exchange->request().method_text, exchange->route(),
                 e.what());
      exchange->respond(Response::error(500, "internal", "internal server error"));
    }
  }
}

}  // namespace atelier::http
