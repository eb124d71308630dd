#include "server/http/server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <optional>
#include <thread>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/logging.h"
#include "common/thread_name.h"
#include "server/http/session.h"

namespace atelier::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Written, best effort and without reading the request, to a connection over a limit.
constexpr std::string_view kRefusal =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Retry-After: 5\r\nConnection: close\r\nContent-Length: 70\r\n\r\n"
    R"({"error":{"code":"unavailable","message":"too many open connections"}})";
static_assert(kRefusal.size() - kRefusal.find("\r\n\r\n") - 4 == 70);

// Refusals are logged at most this often (an attacker must not flood the log).
constexpr std::chrono::seconds kRefusalLogInterval{10};
// After the body budget drains, the allocator is trimmed this much later (the sessions whose
// charges went have freed their buffers by then), and at most once per such delay.
constexpr std::chrono::milliseconds kTrimDelay{500};

IpBytes ip_bytes(const net::ip::address& a) {
  IpBytes out{};
  if (a.is_v4()) {
    out[10] = out[11] = 0xff;
    const auto v4 = a.to_v4().to_bytes();
    std::copy(v4.begin(), v4.end(), out.begin() + 12);
  } else {
    const auto v6 = a.to_v6().to_bytes();
    std::copy(v6.begin(), v6.end(), out.begin());
  }
  return out;
}

// Freed request buffers can stay in glibc's arenas: after 300 chunked 1 MiB bodies had gone, 60
// of their 256 MiB stayed without this, 2 with it. Bodies of a declared length are one mmap'd
// block each and go back anyway.
void trim_allocator() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(HttpServerOptions options, const Router& router, metrics::Registry* registry)
      : state_(std::make_shared<ServerState>(options.io_threads)),
        ioc_(state_->ioc),
        acceptor_(net::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()),
        trim_timer_(net::make_strand(ioc_)) {
    state_->options = std::move(options);
    state_->router = &router;
    const auto& o = state_->options;
    state_->body_budget = o.body_budget;
    if (!state_->body_budget) {
      state_->body_budget = std::make_shared<BodyBudget>(o.max_buffered_body_bytes);
      owns_budget_ = true;
    }
    state_->connection_limits = std::make_unique<ConnectionLimits>(
        o.max_connections, o.max_connections_per_ip, o.trusted_proxies);
    if (registry) {
      state_->open_connections =
          &registry->gauge("atelier_http_open_connections", "Open HTTP connections");
      state_->body_budget_refusals =
          &registry->counter("atelier_http_body_budget_refusals_total",
                             "Request bodies and WebSocket messages refused: body budget full");
      refused_total_ = &registry->counter("atelier_http_connections_refused_total",
                                          "Connections closed at accept: over a connection limit",
                                          {{"limit", "total"}});
      refused_per_address_ = &registry->counter(
          "atelier_http_connections_refused_total",
          "Connections closed at accept: over a connection limit", {{"limit", "per_address"}});
      registry->callback_gauge(
          "atelier_http_buffered_body_bytes",
          "Bytes of request bodies being received, charged to the budget",
          [budget = state_->body_budget] { return static_cast<double>(budget->in_use()); });
    }
  }

  Result<uint16_t> start() {
    const auto& o = state_->options;
    boost::system::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(o.host, std::to_string(o.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      return Status::invalid_argument("cannot resolve host '" + o.host + "': " + ec.message(),
                                      "host");
    }
    tcp::endpoint endpoint = results.begin()->endpoint();
    auto fail = [&](const char* what) -> Status {
      return Status::io_error(std::string("cannot listen on ") + o.host + ":" +
                              std::to_string(o.port) + " (" + what + "): " + ec.message());
    };
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return fail("open");
    acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (ec) return fail("reuse_address");
    acceptor_.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen");
    port_ = acceptor_.local_endpoint().port();
    if (owns_budget_) {
      state_->body_budget->set_on_drained([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->schedule_trim();
      });
    }

    do_accept();
    // Handlers answer from other threads while a connection has no I/O pending; without this
    // guard run() would return as soon as the sockets go quiet and those answers would be lost.
    work_.emplace(ioc_.get_executor());
    for (int i = 0; i < o.io_threads; ++i) {
      threads_.emplace_back([this, i] {
        set_current_thread_name("http-io-" + std::to_string(i));
        ioc_.run();
      });
    }
    running_ = true;
    return port_;
  }

  void shutdown(std::chrono::milliseconds deadline) {
    if (!running_.exchange(false)) return;
    state_->draining = true;
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
      self->retry_timer_.cancel();
    });
    net::post(trim_timer_.get_executor(), [self = shared_from_this()] {
      self->trim_pending_ = true;  // none from now on
      self->trim_timer_.cancel();
    });
    for (auto& s : live_sessions()) s->begin_drain();

    const auto until = std::chrono::steady_clock::now() + deadline;
    while (state_->session_count.load() > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (size_t left = state_->session_count.load(); left > 0) {
      log::warn("shutdown deadline reached; closing {} connection(s) still open", left);
      for (auto& s : live_sessions()) s->force_close();
      const auto grace = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
      while (state_->session_count.load() > 0 && std::chrono::steady_clock::now() < grace) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
    // Run what the stop left queued (aborted reads, the accept handler) so the handlers release
    // the sessions and this object they hold.
    ioc_.restart();
    ioc_.poll();
    state_->io_stopped = true;
  }

  uint16_t port() const { return port_; }
  std::shared_ptr<ServerState> state() const { return state_; }

  // From any thread (the budget's on_drained): trims the allocator a little later, on the trim
  // timer's strand; a trim already pending covers this one.
  void schedule_trim() {
    net::post(trim_timer_.get_executor(), [self = shared_from_this()] {
      if (self->trim_pending_) return;
      self->trim_pending_ = true;
      self->trim_timer_.expires_after(kTrimDelay);
      self->trim_timer_.async_wait([self](boost::system::error_code ec) {
        if (ec) return;
        trim_allocator();
        self->trim_pending_ = false;
      });
    });
  }

  // On the acceptor's strand. A connection over a limit is told so (if its socket takes the
  // bytes at once) and closed, without reading anything it sent.
  void refuse(tcp::socket& socket, ConnectionLimits::Refusal why) {
    const bool total = why == ConnectionLimits::Refusal::kTotal;
    if (auto* c = total ? refused_total_ : refused_per_address_) c->inc();
    ++refused_since_log_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_log_ >= kRefusalLogInterval) {
      log::warn(
          "refused {} connection(s): over max_connections ({}) or max_connections_per_ip "
          "({}); this one {}",
          refused_since_log_, state_->options.max_connections,
          state_->options.max_connections_per_ip,
          total ? "over the total" : "over the per-address limit");
      refused_since_log_ = 0;
      last_refusal_log_ = now;
    }
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    if (!ec) socket.write_some(net::buffer(kRefusal.data(), kRefusal.size()), ec);
    socket.close(ec);
  }

 private:
  std::vector<std::shared_ptr<Connection>> live_sessions() {
    std::vector<std::shared_ptr<Connection>> out;
    MutexLock lock(state_->sessions_mu);
    for (auto& [raw, weak] : state_->sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  void do_accept() {
    acceptor_.async_accept(
        net::make_strand(ioc_),
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
          if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
          if (ec) {
            // E.g. out of file descriptors: back off briefly instead of spinning.
            log::warn("accept failed: {}", ec.message());
            self->retry_timer_.expires_after(std::chrono::milliseconds(100));
            self->retry_timer_.async_wait([self](boost::system::error_code tec) {
              if (!tec) self->do_accept();
            });
            return;
          }
          if (self->state_->draining.load()) return;  // socket closes as it goes out of scope
          boost::system::error_code nec;
          std::optional<IpBytes> peer;
          if (auto ep = socket.remote_endpoint(nec); !nec) peer = ip_bytes(ep.address());
          ConnectionLimits::Refusal why{};
          auto slot = self->state_->connection_limits->try_admit(peer, &why);
          if (!slot) {
            self->refuse(socket, why);
            return self->do_accept();
          }
          socket.set_option(tcp::no_delay(true), nec);
          std::make_shared<Session>(std::move(socket), self->state_, std::move(*slot))->start();
          self->do_accept();
        });
  }

  std::shared_ptr<ServerState> state_;  // owns the io_context; first, so built first
  net::io_context& ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  net::steady_timer trim_timer_;  // on its own strand
  bool trim_pending_ = false;     // on the trim timer's strand
  bool owns_budget_ = false;      // made here, so the trim hook is ours to set
  std::vector<std::thread> threads_;
  std::atomic<bool> running_{false};
  uint16_t port_ = 0;
  // Refusals at accept (on the acceptor's strand).
  metrics::Counter* refused_total_ = nullptr;
  metrics::Counter* refused_per_address_ = nullptr;
  size_t refused_since_log_ = 0;
  std::chrono::steady_clock::time_point last_refusal_log_{};
};

HttpServer::HttpServer(HttpServerOptions options, const Router& router, metrics::Registry* registry)
    : impl_(std::make_shared<Impl>(std::move(options), router, registry)) {}

HttpServer::~HttpServer() {
  impl_->shutdown(std::chrono::milliseconds(0));
}

Result<uint16_t> HttpServer::start() {
  return impl_->start();
}
uint16_t HttpServer::port() const {
  return impl_->port();
}

void HttpServer::set_rejection_observer(
    std::function<void(const Request&, const Response&)> observer) {
  impl_->state()->rejection_observer = std::move(observer);
}

void HttpServer::shutdown(std::chrono::milliseconds deadline) {
  impl_->shutdown(deadline);
}
bool HttpServer::draining() const {
  return impl_->state()->draining.load();
}
size_t HttpServer::open_connections() const {
  return impl_->state()->session_count.load();
}
std::shared_ptr<BodyBudget> HttpServer::body_budget() const {
  return impl_->state()->body_budget;
}

}  // namespace atelier::http
