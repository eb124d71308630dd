#include "server/app/app.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"
#include "common/readiness.h"
#include "common/thread_pool.h"
#include "server/api/api_context.h"
#include "server/app/routes.h"
#include "server/auth/rate_limiter.h"
#include "server/http/middleware.h"
#include "server/http/router.h"
#include "server/http/server.h"
#include "server/http/static_files.h"
#include "server/store/store.h"

#ifndef ATELIER_VERSION
#define ATELIER_VERSION "0.0.0"
#endif
#ifndef ATELIER_DEFAULT_WEB_ROOT
#define ATELIER_DEFAULT_WEB_ROOT "web-client/dist"
#endif

namespace atelier::app {

namespace net = boost::asio;

class App::Impl {
 public:
  explicit Impl(ServerConfig config) : config_(std::move(config)), recorder_(&registry_) {}

  ~Impl() {
    shutdown();
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  Status start() {
    readiness_.set_pending("store", "opening database");
    ATELIER_RETURN_IF_ERROR(lock_data_dir());

    auto store = store::Store::open(
        {.path = config_.data_dir / "atelier.db",
         .reader_count = config_.db_readers,
         .checkpoint_interval = std::chrono::milliseconds(config_.checkpoint_interval_ms)});
    if (!store) return store.status().with_context("opening the database");
    store_ = std::move(*store);
    const auto& report = store_->migration_report();
    if (report.applied.empty()) {
      log::info("database schema at version {}", report.to_version);
    } else {
      log::info("database schema migrated from version {} to {}", report.from_version,
                report.to_version);
    }
    readiness_.set_ready("store");
    register_store_metrics();

    std::filesystem::path web_root = config_.web_root.empty()
                                         ? std::filesystem::path(ATELIER_DEFAULT_WEB_ROOT)
                                         : config_.web_root;
    static_files_ = std::make_unique<http::StaticFiles>(web_root);
    if (static_files_->has_build()) {
      log::info("serving the web client from {}", web_root.string());
    } else {
      log::warn("no web client build in {}; / serves a page on how to build it", web_root.string());
    }

    api_.store = store_.get();
    api_.hash_pool = &hash_pool_;
    api_.login_limiter = &login_limiter_;
    api_.registration = config_.registration == "invite"   ? api::RegistrationMode::kInvite
                        : config_.registration == "closed" ? api::RegistrationMode::kClosed
                                                           : api::RegistrationMode::kOpen;
    api_.session_ttl_s = config_.session_ttl_s;
    api_.public_url = config_.public_url;
    api_.trusted_origins = config_.cors_origins;
    api_.password_cost = password_cost_;
    api_.now = [] {
      return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    };

    RouteServices services{.readiness = &readiness_,
                           .registry = &registry_,
                           .recorder = &recorder_,
                           .static_files = static_files_.get(),
                           .cors_origins = config_.cors_origins,
                           .api = &api_,
                           .version = ATELIER_VERSION,
                           .instance_id = store_->instance_id()};
    ATELIER_RETURN_IF_ERROR(build_router(router_, services));

    http::HttpServerOptions opts;
    opts.host = config_.host;
    opts.port = static_cast<uint16_t>(config_.port);
    opts.io_threads = config_.io_threads;
    opts.max_body_bytes = static_cast<uint64_t>(config_.max_body_bytes);
    opts.max_header_bytes = static_cast<uint32_t>(config_.max_header_bytes);
    opts.header_timeout = std::chrono::milliseconds(config_.header_timeout_ms);
    opts.read_timeout = std::chrono::milliseconds(config_.read_timeout_ms);
    opts.idle_timeout = std::chrono::milliseconds(config_.idle_timeout_ms);
    server_ = std::make_unique<http::HttpServer>(opts, router_, &registry_);
    server_->set_rejection_observer([this](const http::Request& req, const http::Response& r) {
      recorder_.record(req, "rejected", r.status, 0.0, "-");
    });
    auto port = server_->start();
    if (!port) return port.status();
    port_ = *port;
    log::announce("listening on http://{}:{}", config_.host, port_);
    return Status::ok();
  }

  int run_until_stopped() {
    net::signal_set signals(signal_ioc_, SIGINT, SIGTERM);
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (!ec) log::info("received signal {}; shutting down", signo);
      signal_ioc_.stop();
    });
    signal_ioc_.run();
    shutdown();
    return 0;
  }

  // io_context::stop is thread-safe and sticky: a later run() returns at once.
  void request_stop() { signal_ioc_.stop(); }

  void shutdown() {
    std::lock_guard lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    readiness_.set_shutting_down();
    auto deadline = std::chrono::milliseconds(config_.shutdown_timeout_ms);
    const auto started = std::chrono::steady_clock::now();
    if (server_ && config_.shutdown_drain_delay_ms > 0) {
      auto delay = std::min(deadline, std::chrono::milliseconds(config_.shutdown_drain_delay_ms));
      log::info("draining: /readyz answers 503 for {} ms before the listener closes",
                delay.count());
      std::this_thread::sleep_for(delay);
      deadline -= delay;
    }
    if (server_) server_->shutdown(deadline);
    // Hashing tasks still queued answer into closed connections; let them end before the store.
    hash_pool_.stop();
    if (store_) store_->close();
    log::announce("shut down in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count());
    log::flush();
  }

  uint16_t port() const { return port_; }

 private:
  void register_store_metrics() {
    store::Store* st = store_.get();
    registry_.callback_gauge("atelier_store_writes_committed",
                             "Write transactions committed since start",
                             [st] { return static_cast<double>(st->stats().writes_committed); });
    registry_.callback_gauge("atelier_store_writes_rolled_back",
                             "Write transactions rolled back since start",
                             [st] { return static_cast<double>(st->stats().writes_rolled_back); });
    registry_.callback_gauge("atelier_store_writes_pending", "Write transactions queued",
                             [st] { return static_cast<double>(st->stats().writes_pending); });
    registry_.callback_gauge("atelier_store_checkpoints_run", "WAL checkpoints run since start",
                             [st] { return static_cast<double>(st->stats().checkpoints_run); });
  }

  // One server per data dir: a second one would fight over the database's single writer.
  Status lock_data_dir() {
    std::error_code ec;
    std::filesystem::create_directories(config_.data_dir, ec);
    if (ec) {
      return Status::io_error("cannot create data dir " + config_.data_dir.string() + ": " +
                              ec.message());
    }
    std::string path = (config_.data_dir / "atelier.lock").string();
    lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) return Status::io_error("cannot open " + path);
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      return Status::failed_precondition("data dir " + config_.data_dir.string() +
                                         " is in use by another atelier process");
    }
    return Status::ok();
  }

  ServerConfig config_;
  Readiness readiness_;
  metrics::Registry registry_;
  http::RequestRecorder recorder_;
  http::Router router_;
  std::unique_ptr<store::Store> store_;
  // Two hashes at a time (64 MiB each), a short queue beyond that: logins are bursty, not bulk.
  ThreadPool hash_pool_{2, 64};
  auth::RateLimiter login_limiter_;
  auth::PasswordCost password_cost_ = auth::PasswordCost::interactive();
  api::ApiContext api_;
  std::unique_ptr<http::StaticFiles> static_files_;
  std::unique_ptr<http::HttpServer> server_;
  net::io_context signal_ioc_;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
  int lock_fd_ = -1;
  uint16_t port_ = 0;
};

App::App(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
App::~App() = default;
Status App::start() {
  return impl_->start();
}
uint16_t App::port() const {
  return impl_->port();
}
int App::run_until_stopped() {
  return impl_->run_until_stopped();
}
void App::request_stop() {
  impl_->request_stop();
}
void App::shutdown() {
  impl_->shutdown();
}

}  // namespace atelier::app
