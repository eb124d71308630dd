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

#include "common/logging.h"
#include "common/thread_name.h"
#include "server/http/session.h"

namespace atelier::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(HttpServerOptions options, const Router& router, metrics::Registry* registry)
      : state_(std::make_shared<ServerState>(options.io_threads)),
        ioc_(state_->ioc),
        acceptor_(net::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()) {
    state_->options = std::move(options);
    state_->router = &router;
    if (registry) {
      state_->open_connections =
          &registry->gauge("atelier_http_open_connections", "Open HTTP connections");
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
          socket.set_option(tcp::no_delay(true), nec);
          std::make_shared<Session>(std::move(socket), self->state_)->start();
          self->do_accept();
        });
  }

  std::shared_ptr<ServerState> state_;  // owns the io_context; first, so built first
  net::io_context& ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  std::vector<std::thread> threads_;
  std::atomic<bool> running_{false};
  uint16_t port_ = 0;
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

}  // namespace atelier::http
