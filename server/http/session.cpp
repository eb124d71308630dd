#include "server/http/session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <sstream>

#include "common/logging.h"
#include "server/http/forwarded.h"
#include "server/http/response_head.h"
#include "server/http/ws_session.h"

namespace atelier::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using detail::copy_headers;

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// After a response that ends the connection, unread request bytes are drained for a while so
// the client sees the response instead of a reset. Bounded in time and bytes: a refused body
// (413, 503) is not read on the server's account; past the bound, a reset is the client's loss.
constexpr std::chrono::milliseconds kLingerTime{250};
constexpr size_t kLingerBytes = 64 << 10;
// What one read of a body may add to it (Beast reads up to 64 KiB at a time).
constexpr uint64_t kBodyReadAhead = 64 << 10;
// Retry-After (seconds) when the body budget is full: bodies in progress free it soon.
constexpr std::string_view kBudgetRetryAfter = "2";

Method to_method(bhttp::verb v, std::string_view text) {
  switch (v) {
    case bhttp::verb::get:
      return Method::kGet;
    case bhttp::verb::head:
      return Method::kHead;
    case bhttp::verb::post:
      return Method::kPost;
    case bhttp::verb::put:
      return Method::kPut;
    case bhttp::verb::patch:
      return Method::kPatch;
    case bhttp::verb::delete_:
      return Method::kDelete;
    case bhttp::verb::options:
      return Method::kOptions;
    default:
      return parse_method(text);
  }
}

// Parse errors (bad method, bad header syntax, ...) deserve a 400; the end of the stream and
// socket errors mean the peer is gone and nothing can be answered.
bool is_malformed_request(const beast::error_code& ec) {
  return ec.category() == beast::error_code(bhttp::error::end_of_stream).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

}  // namespace

Session::Session(tcp::socket&& socket, std::shared_ptr<ServerState> state,
                 ConnectionLimits::Slot slot)
    : state_(std::move(state)), slot_(std::move(slot)), stream_(std::move(socket)) {
  boost::system::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  if (state_->open_connections) state_->open_connections->add(1);
  state_->session_count.fetch_add(1);
}

Session::~Session() {
  // Normally the stream ended on the strand already; this catches a session released some other
  // way (e.g. its queued handlers discarded at shutdown) so on_close still runs exactly once.
  end_stream();
  MutexLock lock(state_->sessions_mu);
  state_->sessions.erase(this);
  // After shutdown the server (and the metrics it pointed at) may be gone.
  if (state_->open_connections && !state_->io_stopped.load()) state_->open_connections->add(-1);
  state_->session_count.fetch_sub(1);
}

void Session::start() {
  {
    MutexLock lock(state_->sessions_mu);
    state_->sessions[this] = weak_from_this();
  }
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); });
}

void Session::begin_drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    // Between requests nothing is lost by closing; otherwise the response in progress carries
    // `Connection: close` (send() checks `draining`).
    if (self->phase_ == Phase::kIdle) return self->close_now();
    // An open stream would hold shutdown up until its deadline: end it now, once what the
    // producer has queued is written.
    if (self->phase_ == Phase::kStreaming) {
      self->writer_->stop_accepting();
      self->pump_stream();
    }
  });
}

void Session::force_close() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->close_now(); });
}

void Session::wait_for_request() {
  if (state_->draining.load()) return close_after_response();
  phase_ = Phase::kIdle;
  parser_.emplace();
  parser_->header_limit(state_->options.max_header_bytes);
  // Unlimited while the header is read: the limit depends on the route, so on_header() checks
  // Content-Length itself and sets the parser's limit before any body byte is parsed.
  parser_->body_limit(boost::none);
  if (buffer_.size() > 0) return read_header();  // a pipelined request is already here
  // The idle timeout applies until the first byte of the next request arrives; from then on
  // the (shorter) header timeout bounds how long a slow client may take.
  stream_.expires_after(state_->options.idle_timeout);
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
}

void Session::on_first_bytes(beast::error_code ec, size_t n) {
  if (ec) return close_now();  // idle timeout, peer closed, or forced close
  buffer_.commit(n);
  read_header();
}

void Session::read_header() {
  phase_ = Phase::kReadingHeader;
  request_started_ = std::chrono::steady_clock::now();
  stream_.expires_after(state_->options.header_timeout);
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           beast::bind_front_handler(&Session::on_header, shared_from_this()));
}

void Session::on_header(beast::error_code ec, size_t) {
  if (ec == bhttp::error::header_limit) {
    return reject(431, "headers_too_large", "request header fields are too large");
  }
  if (ec) {
    if (is_malformed_request(ec)) {
      return reject(400, "bad_request", "malformed HTTP request: " + ec.message());
    }
    return close_now();  // timeout (slow client) or the peer went away
  }
  // RFC 9112 section 3.2: an HTTP/1.1 request carries exactly one Host (1.0 may omit it).
  const size_t hosts = parser_->get().count(bhttp::field::host);
  if (hosts > 1 || (hosts == 0 && parser_->get().version() >= 11)) {
    return reject(400, "bad_request", "an HTTP/1.1 request must carry exactly one Host header",
                  "Host");
  }
  // The body limit is decided here, before routing and before any body byte is read: the
  // route's own (RouteOptions) or the server's.
  body_limit_ = state_->options.max_body_bytes;
  if (parser_->is_done()) return handle_request();  // no body
  const auto& req = parser_->get();
  if (auto route_limit =
          state_->router->body_limit(to_method(req.method(), req.method_string()), req.target())) {
    body_limit_ = *route_limit;
  }
  if (auto len = parser_->content_length(); len && *len > body_limit_) {
    return reject(413, "body_too_large",
                  "request body of " + std::to_string(*len) + " bytes exceeds the limit of " +
                      std::to_string(body_limit_),
                  "body");
  }
  parser_->body_limit(body_limit_);
  start_body();
}

void Session::start_body() {
  const auto& o = state_->options;
  const auto len = parser_->content_length();
  // A declared length is charged in full before any of it is read (and before 100 Continue
  // invites it); a chunked body is charged as it grows (reserve_body_room).
  auto charge = state_->body_budget->try_charge(len.value_or(0));
  if (!charge) return refuse_busy();
  body_charge_ = std::move(*charge);
  if (!reserve_body_room()) return refuse_busy();
  // The whole body must arrive at min_body_rate (after a grace period), not merely trickle in
  // one byte per read_timeout.
  const uint64_t bytes = len.value_or(body_limit_);
  body_deadline_ = std::chrono::steady_clock::now() + o.body_grace +
                   std::chrono::milliseconds(bytes * 1000 / std::max<uint64_t>(o.min_body_rate, 1));
  const auto& req = parser_->get();
  if (iequals(req[bhttp::field::expect], "100-continue")) {
    phase_ = Phase::kReadingBody;
    stream_.expires_at(std::min(std::chrono::steady_clock::now() + o.read_timeout, body_deadline_));
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code wec, size_t) {
                       if (wec) return self->close_now();
                       self->read_body();
                     });
    return;
  }
  read_body();
}

bool Session::reserve_body_room() {
  if (parser_->content_length()) return true;  // charged in full up front
  // Room for what the parser holds plus one read, taken in doubling steps like the string's own
  // growth, so that the charge is what the body's buffer really holds.
  auto& body = parser_->get().body();
  const uint64_t limit = body_limit_;
  const uint64_t want = std::min<uint64_t>(limit, body.size() + buffer_.size() + kBodyReadAhead);
  if (want <= body.capacity()) return body_charge_.grow_to(body.capacity());
  const uint64_t target = std::min<uint64_t>(limit, std::max<uint64_t>(want, 2 * body.capacity()));
  if (!body_charge_.grow_to(target)) return false;
  body.reserve(target);
  return true;
}

void Session::read_body() {
  phase_ = Phase::kReadingBody;
  // Each read must progress within read_timeout, and the whole body arrive by its deadline.
  stream_.expires_at(
      std::min(std::chrono::steady_clock::now() + state_->options.read_timeout, body_deadline_));
  bhttp::async_read_some(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&Session::on_body_part, shared_from_this()));
}

void Session::on_body_part(beast::error_code ec, size_t) {
  if (ec == bhttp::error::body_limit) {
    return reject(413, "body_too_large",
                  "request body exceeds the limit of " + std::to_string(body_limit_) + " bytes",
                  "body");
  }
  if (ec == bhttp::error::need_buffer) ec = {};
  if (ec) {
    if (is_malformed_request(ec)) {
      return reject(400, "bad_request", "malformed HTTP request body: " + ec.message());
    }
    return close_now();
  }
  if (parser_->is_done()) return handle_request();
  if (!reserve_body_room()) return refuse_busy();
  read_body();
}

Request Session::build_request() const {
  const auto& req = parser_->get();
  Request out;
  out.method_text = std::string(req.method_string());
  out.method = to_method(req.method(), out.method_text);
  out.target = std::string(req.target());
  size_t q = out.target.find('?');
  out.path = out.target.substr(0, q);
  if (q != std::string::npos) out.query = out.target.substr(q + 1);
  for (const auto& field : req) out.headers.add(field.name_string(), field.value());
  out.body = req.body();
  out.peer_address = remote_;
  apply_forwarding(out, state_->options.trusted_proxies);  // remote_address: the real client
  out.version = req.version();
  out.keep_alive = req.keep_alive();
  return out;
}

void Session::handle_request() {
  phase_ = Phase::kHandling;
  stream_.expires_never();  // a handler may take its time; the write gets its own deadline
  Request req = build_request();
  // The request has its own copy of the body; the parser's goes now rather than at the next
  // request (the budget charge stays until the response is decided).
  if (!parser_->get().body().empty()) std::string().swap(parser_->get().body());
  request_keep_alive_ = req.keep_alive;
  request_is_head_ = req.method == Method::kHead;
  auto self = shared_from_this();
  auto exchange = std::make_shared<Exchange>(std::move(req), [self](Response response) {
    if (self->state_->io_stopped.load()) return;  // answered after shutdown: nobody to tell
    // A handler answering inline is already on our strand: dispatch then writes at once,
    // saving a trip through the scheduler; from any other thread it queues on the strand.
    net::dispatch(self->stream_.get_executor(),
                  [self, r = std::move(response)]() mutable { self->send(std::move(r)); });
  });
  state_->router->dispatch(exchange);
}

void Session::send(Response r) {
  if (phase_ == Phase::kClosed) return;
  body_charge_.reset();  // the handler is done with the body
  const unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
  if (r.websocket) return start_websocket(std::move(r));
  if (r.stream) return start_stream(std::move(r), version);
  phase_ = Phase::kWriting;
  const bool keep_alive = request_keep_alive_ && !r.close && !state_->draining.load();
  auto status = static_cast<bhttp::status>(r.status);
  std::optional<bhttp::message_generator> message;

  if (r.file) {
    bhttp::response<bhttp::file_body> res{status, version};
    beast::error_code ec;
    res.body().open(r.file->c_str(), beast::file_mode::scan, ec);
    if (!ec) {
      copy_headers(r, res);
      res.keep_alive(keep_alive);
      uint64_t size = res.body().size();
      if (request_is_head_) {
        bhttp::response<bhttp::empty_body> head{status, version};
        copy_headers(r, head);
        head.keep_alive(keep_alive);
        head.content_length(size);
        message.emplace(std::move(head));
      } else {
        res.content_length(size);
        message.emplace(std::move(res));
      }
    } else {
      log::warn("cannot open {} for a response: {}", r.file->string(), ec.message());
      r = Response::error(404, "not_found", "no such resource");
    }
  }
  if (!message) {
    bhttp::response<bhttp::string_body> res{status, version};
    copy_headers(r, res);
    res.keep_alive(keep_alive);
    const bool bodiless = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    if (request_is_head_) {
      if (!bodiless) res.content_length(r.body.size());
    } else if (!bodiless) {
      res.body() = std::move(r.body);
      res.prepare_payload();
    }
    message.emplace(std::move(res));
  }

  stream_.expires_after(state_->options.read_timeout);
  beast::async_write(stream_, std::move(*message),
                     [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                       self->on_written(keep_alive, ec);
                     });
}

void Session::on_written(bool keep_alive, beast::error_code ec) {
  if (ec) return close_now();
  if (!keep_alive) return close_after_response();
  wait_for_request();
}

void Session::reject(int status, std::string_view code, std::string_view message,
                     std::string_view field) {
  reject(Response::error(status, code, message, field));
}

void Session::refuse_busy() {
  if (state_->body_budget_refusals) state_->body_budget_refusals->inc();
  Response r = Response::error(503, "unavailable",
                               "the server is receiving too many request bodies; try again later");
  r.headers.set("Retry-After", kBudgetRetryAfter);
  reject(std::move(r));
}

void Session::reject(Response r) {
  Request req;
  if (parser_ && parser_->is_header_done()) {
    req = build_request();
  } else {
    req.method_text = "-";
    req.target = req.path = "-";
    req.remote_address = remote_;
  }
  r.close = true;
  if (state_->rejection_observer) state_->rejection_observer(req, r);
  request_is_head_ = req.method == Method::kHead;
  send(std::move(r));
}

void Session::start_websocket(Response r) {
  if (!parser_ || !parser_->is_header_done() || request_is_head_) {
    return reject(400, "bad_request", "not a WebSocket upgrade");
  }
  // From here the WsSession owns the socket (and its strand); this session is done.
  phase_ = Phase::kClosed;
  auto ws = std::make_shared<WsSession>(std::move(stream_), state_, std::move(slot_), remote_,
                                        std::move(*r.websocket));
  ws->run(parser_->release());
}

void Session::close_now() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  body_charge_.reset();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();  // a pending read completes with operation_aborted and lets go of us
  end_stream();
}

void Session::close_after_response() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  body_charge_.reset();
  end_stream();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    stream_.close();
    return;
  }
  // Drain what the client still sends (bounded in time and bytes) so our last response isn't
  // destroyed by a reset; the socket closes when this last operation ends and the session is
  // released.
  struct Scratch {
    std::array<char, 4096> bytes;
    size_t left = kLingerBytes;
  };
  auto scratch = std::make_shared<Scratch>();
  stream_.expires_after(kLingerTime);
  auto drain = std::make_shared<std::function<void(beast::error_code, size_t)>>();
  *drain = [self = shared_from_this(), scratch, drain](beast::error_code rec, size_t n) mutable {
    scratch->left -= std::min(scratch->left, n);
    if (rec || scratch->left == 0) {
      self->stream_.close();
      *drain = nullptr;  // break the self-reference cycle
      return;
    }
    self->stream_.async_read_some(net::buffer(scratch->bytes), *drain);
  };
  stream_.async_read_some(net::buffer(scratch->bytes), *drain);
}

}  // namespace atelier::http
