#include "server/app/app.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/readiness.h"
#include "common/thread_pool.h"
#include "server/api/api_context.h"
#include "server/api/api_json.h"
#include "server/api/credential_db.h"
#include "server/api/credential_watch.h"
#include "server/api/event_json.h"
#include "server/api/job_streams.h"
#include "server/api/live_commands.h"
#include "server/api/live_wire_json.h"
#include "server/app/routes.h"
#include "server/auth/rate_limiter.h"
#include "server/events/event_bus.h"
#include "server/events/event_log.h"
#include "server/http/middleware.h"
#include "server/http/router.h"
#include "server/http/server.h"
#include "server/http/static_files.h"
#include "server/inference/cppn_generator.h"
#include "server/inference/file_hash.h"
#include "server/inference/model_registry.h"
#include "server/inference/null_generator.h"
#include "server/inference/sd/sd_generator.h"
#include "server/inference/torch_runtime.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job_service.h"
#include "server/jobs/worker_pool.h"
#include "server/projects/project_db.h"
#include "server/rooms/room_hub.h"
#include "server/store/store.h"

#ifndef ATELIER_VERSION
#define ATELIER_VERSION "0.0.0"
#endif
#ifndef ATELIER_DEFAULT_WEB_ROOT
#define ATELIER_DEFAULT_WEB_ROOT "web-client/dist"
#endif

namespace atelier::app {

namespace net = boost::asio;

namespace {

// SSE streams of idle jobs get a comment this often, so that proxies keep them open.
constexpr std::chrono::milliseconds kSseKeepAlive{15'000};
// How often live connections' credentials are checked against the database: revocations by
// another process (`atelier admin reset-password`) and expiry close them within about this.
constexpr std::chrono::milliseconds kCredentialCheck{500};

int64_t unix_ms() {
  return to_unix_ms(sys_now());
}

// Crash tests set ATELIER_TEST_CRASH_AT="after_rename:0.3,after_commit:0.3": at each named
// point of a job's completion (or of an upload: upload_after_put, upload_after_commit) the
// process kills itself (SIGKILL, no clean-up) with that probability. Unset in normal operation,
// so the hook is empty.
std::function<void(std::string_view)> crash_hook_from_env() {
  const char* spec = std::getenv("ATELIER_TEST_CRASH_AT");
  if (!spec || !*spec) return {};
  std::vector<std::pair<std::string, double>> points;
  std::string text = spec;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    std::string item = text.substr(start, end == std::string::npos ? end : end - start);
    size_t colon = item.find(':');
    if (!item.empty()) {
      points.emplace_back(item.substr(0, colon),
                          colon == std::string::npos ? 1.0 : std::atof(item.c_str() + colon + 1));
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  log::warn("test crash points are armed (ATELIER_TEST_CRASH_AT={})", text);
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  auto mu = std::make_shared<std::mutex>();
  return [points, rng, mu](std::string_view point) {
    for (const auto& [name, p] : points) {
      if (name != point) continue;
      std::lock_guard lock(*mu);
      if (std::uniform_real_distribution<double>(0, 1)(*rng) < p) {
        log::warn("test crash point {} reached: killing the process", name);
        log::flush();
        std::raise(SIGKILL);
      }
    }
  };
}

}  // namespace

class App::Impl {
 public:
  Impl(ServerConfig config, AppHooks hooks)
      : config_(std::move(config)), hooks_(std::move(hooks)), recorder_(&registry_) {}

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
         .checkpoint_interval = std::chrono::milliseconds(config_.checkpoint_interval_ms),
         .synchronous_full = config_.sync_mode != "normal"});
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
    credential_watch_ = std::make_unique<api::CredentialWatch>(
        api::credential_db::store_checker(*store_, sys_now), kCredentialCheck);
    credential_watch_->start();
    ATELIER_RETURN_IF_ERROR(start_rooms());

    std::filesystem::path web_root = config_.web_root.empty()
                                         ? std::filesystem::path(ATELIER_DEFAULT_WEB_ROOT)
                                         : config_.web_root;
    static_files_ = std::make_unique<http::StaticFiles>(web_root);
    if (static_files_->has_build()) {
      log::info("serving the web client from {}", web_root.string());
    } else {
      log::warn("no web client build in {}; / serves a page on how to build it", web_root.string());
    }

    ATELIER_RETURN_IF_ERROR(start_generation());

    api_.store = store_.get();
    api_.jobs = jobs_.get();
    api_.job_streams = job_streams_.get();
    api_.events = &event_log_;
    api_.models = &models_;
    api_.images = images_.get();
    api_.image_pool = &image_pool_;
    api_.hash_pool = &hash_pool_;
    api_.login_limiter = &login_limiter_;
    api_.registration_ip_limiter = &registration_ip_limiter_;
    api_.registration_limiter = &registration_limiter_;
    api_.password_verifications = &registry_.counter(
        "atelier_password_verifications_total", "Passwords checked against a stored hash at login");
    api_.registration = config_.registration == "invite"   ? api::RegistrationMode::kInvite
                        : config_.registration == "closed" ? api::RegistrationMode::kClosed
                                                           : api::RegistrationMode::kOpen;
    api_.session_ttl = std::chrono::seconds(config_.session_ttl_s);
    api_.max_projects_per_user = config_.max_projects_per_user;
    api_.max_tokens_per_user = config_.max_tokens_per_user;
    api_.max_upload_bytes = config_.max_upload_bytes;
    api_.max_upload_pixels = config_.max_upload_pixels;
    api_.max_uploads_per_user_per_hour = config_.max_uploads_per_user_per_hour;
    api_.public_url = config_.public_url;
    api_.trusted_origins = config_.cors_origins;
    api_.password_cost = password_cost_;
    api_.rooms = rooms_.get();
    api_.live_commands = &live_commands_;
    api_.credential_watch = credential_watch_.get();
    api_.ws_options.max_queue_bytes = static_cast<size_t>(config_.ws_queue_bytes);
    api_.ws_options.idle_timeout = std::chrono::milliseconds(config_.ws_idle_timeout_ms);
    api_.ws_options.direct_writes = config_.ws_direct_writes;
    api_.now = sys_now;
    api_.test_hook = crash_hook_from_env();  // uploads' crash points (empty unless armed)

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
    opts.max_buffered_body_bytes = static_cast<uint64_t>(config_.max_buffered_body_bytes);
    opts.max_connections = static_cast<size_t>(config_.max_connections);
    opts.max_connections_per_ip = static_cast<size_t>(config_.max_connections_per_ip);
    opts.min_body_rate = static_cast<uint64_t>(config_.min_body_rate);
    opts.body_grace = std::chrono::milliseconds(config_.body_grace_ms);
    ATELIER_ASSIGN_OR_RETURN(opts.trusted_proxies, CidrSet::parse(config_.trusted_proxies));
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
    // Running jobs are interrupted and go back to the queue for the next start.
    if (jobs_) jobs_->stop();
    if (workers_) workers_->stop();
    if (jobs_) jobs_->drain_completions();
    image_pool_.stop();
    // Hashing tasks still queued answer into closed connections; let them end before the store.
    hash_pool_.stop();
    if (credential_watch_) credential_watch_->stop();  // it reads the store
    if (store_) store_->close();
    // Nothing publishes any more (the store is closed, the workers stopped).
    bus_.set_preview_demand(nullptr);
    if (hub_subscription_ != 0) bus_.unsubscribe(hub_subscription_);
    if (rooms_) rooms_->stop();
    log::announce("shut down in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count());
    log::flush();
  }

  uint16_t port() const { return port_; }

 private:
  Status start_generation() {
    auto images = jobs::ImageStore::open(config_.data_dir, config_.sync_mode != "normal");
    if (!images.is_ok()) return images.status();
    images_ = std::move(*images);
    ATELIER_RETURN_IF_ERROR(models_.add({inference::cppn_model_info(), [](const std::string& d) {
                                           return inference::make_cppn_generator(d);
                                         }}));
    // Content hashes of model and LoRA files, remembered across restarts by (path, size, mtime).
    model_hashes_ =
        std::make_unique<inference::FileHashCache>(config_.data_dir / "model_hashes.json");
    const std::filesystem::path loras_dir = loras_dir_of(config_);
    inference::SdOptions sd_options{.cache_bytes = config_.sd_cache_mb << 20,
                                    .fp16_on_cuda = config_.sd_fp16,
                                    .loras_dir = loras_dir.string(),
                                    .clip_vocab = config_.clip_vocab.string(),
                                    .hashes = model_hashes_.get()};
    auto sd = inference::discover_sd_models(config_.models_dir.string(), sd_options);
    for (const auto& problem : sd.problems) log::warn("models: {}", problem);
    for (auto& entry : sd.models) {
      log::info("models: {} ({}{})", entry.info.id, config_.models_dir.string(),
                entry.info.available ? "" : ", unavailable");
      ATELIER_RETURN_IF_ERROR(models_.add(std::move(entry)));
    }
    for (auto& lora : sd.loras) {
      log::info("LoRA: {} ({}{})", lora.name, lora.family.empty() ? "?" : lora.family,
                lora.available ? "" : ", unavailable");
      ATELIER_RETURN_IF_ERROR(models_.add_lora(std::move(lora)));
    }
    log::debug("LoRA directory: {}", loras_dir.string());
    if (config_.enable_null_model) {
      ATELIER_RETURN_IF_ERROR(models_.add(
          inference::null_model_entry(std::chrono::milliseconds(config_.null_step_ms))));
    }
    if (hooks_.register_models) ATELIER_RETURN_IF_ERROR(hooks_.register_models(models_));
    inference::configure_torch_threads(config_.torch_threads);
    auto devices = inference::resolve_worker_devices(config_.workers);
    if (!devices.is_ok()) return devices.status().with_context("workers");

    jobs::JobServiceOptions options;
    options.lease = std::chrono::milliseconds(config_.job_lease_ms);
    options.max_attempts = config_.job_max_attempts;
    options.max_queued_per_user = config_.max_queued_per_user;
    options.ageing = std::chrono::milliseconds(config_.queue_ageing_ms);
    options.reaper_interval = std::chrono::milliseconds(config_.job_reaper_interval_ms);
    options.orphan_sweep_interval = std::chrono::milliseconds(config_.orphan_sweep_interval_ms);
    options.orphan_grace = std::chrono::milliseconds(config_.orphan_grace_ms);
    jobs_ = std::make_unique<jobs::JobService>(*store_, *images_, event_log_, options, sys_now);
    jobs_->test_hook = crash_hook_from_env();
    ATELIER_RETURN_IF_ERROR(jobs_->start());
    jobs::JobService* service = jobs_.get();
    registry_.callback_gauge("atelier_jobs_queued", "Jobs waiting for a worker",
                             [service] { return static_cast<double>(service->queued_count()); });

    workers_ = std::make_unique<jobs::WorkerPool>(
        *jobs_, models_,
        jobs::WorkerPoolOptions{.devices = *devices,
                                .thread_init = inference::torch_worker_thread_init});
    job_streams_ =
        std::make_unique<api::JobStreams>(bus_, *jobs_, kSseKeepAlive, credential_watch_.get());
    ATELIER_RETURN_IF_ERROR(workers_->start());
    std::string list;
    for (const auto& d : *devices) list += (list.empty() ? "" : ", ") + d;
    std::string models;
    for (const auto& m : models_.models()) models += (models.empty() ? "" : ", ") + m.info.id;
    log::info("generation: {} worker(s) on {}; models {}; torch {}", devices->size(), list, models,
              inference::torch_description());
    return Status::ok();
  }

  // The live rooms hear every committed event and every step from the event bus (subscribed
  // before any job recovery writes, so nothing committed while running is missed), and answer
  // the workers' preview demand.
  Status start_rooms() {
    rooms_ = std::make_unique<rooms::RoomHub>(
        rooms::RoomHubOptions{.preview_interval =
                                  std::chrono::milliseconds(config_.preview_interval_ms)},
        std::make_shared<api::LiveWireJson>(), api::committed_event_json, steady_now);
    rooms_->start();
    rooms::RoomHub* hub = rooms_.get();
    hub_subscription_ = bus_.subscribe(
        {.committed = [hub](const events::CommittedEvent& e) { hub->on_committed(e); },
         .progress = [hub](const events::JobProgress& p) { hub->on_progress(p); }});
    bus_.set_preview_demand([hub](const jobs::Job& job) { return hub->wants_preview(job); });
    return Status::ok();
  }

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
  AppHooks hooks_;
  Readiness readiness_;
  metrics::Registry registry_;
  http::RequestRecorder recorder_;
  http::Router router_;
  // Domain events: declared before the store, whose transactions publish through them.
  events::EventBus bus_;
  events::EventLog event_log_{bus_, api::event_data_json};
  uint64_t hub_subscription_ = 0;
  std::unique_ptr<store::Store> store_;
  // Live connections by credential: after the store (whose reads it makes), before the streams.
  std::unique_ptr<api::CredentialWatch> credential_watch_;
  // Two hashes at a time (64 MiB each), a short queue beyond that: logins are bursty, not bulk.
  ThreadPool hash_pool_{2, 64, "pw-hash"};
  // Wrong passwords per username and per address; the window is also the lockout.
  auth::RateLimiter login_limiter_{{.max_failures = config_.login_max_failures,
                                    .window = std::chrono::seconds(config_.login_lockout_s),
                                    .lockout = std::chrono::seconds(config_.login_lockout_s)}};
  // Registrations per client address and for the whole instance, per hour.
  auth::RateLimiter registration_ip_limiter_{
      {.max_failures = static_cast<int>(config_.registrations_per_ip_per_hour),
       .window = std::chrono::hours(1),
       .lockout = std::chrono::hours(1)}};
  auth::RateLimiter registration_limiter_{
      {.max_failures = static_cast<int>(config_.registrations_per_hour),
       .window = std::chrono::hours(1),
       .lockout = std::chrono::hours(1)}};
  auth::PasswordCost password_cost_ = auth::PasswordCost::interactive();
  api::ApiContext api_;
  std::unique_ptr<http::StaticFiles> static_files_;
  // Generation: declared after the store (destroyed before it), the workers after the service.
  std::unique_ptr<jobs::ImageStore> images_;
  std::unique_ptr<inference::FileHashCache> model_hashes_;
  inference::ModelRegistry models_;
  std::unique_ptr<jobs::JobService> jobs_;
  std::unique_ptr<jobs::WorkerPool> workers_;
  // SSE streams of jobs: after the service, whose jobs they decorate.
  std::unique_ptr<api::JobStreams> job_streams_;
  // Thumbnails: decode, resize and encode off the I/O threads.
  ThreadPool image_pool_{2, 256, "thumbs"};
  // Live rooms: after the store (the bus delivers here; the store is closed first).
  std::unique_ptr<rooms::RoomHub> rooms_;
  api::CommandLog live_commands_{unix_ms};
  std::unique_ptr<http::HttpServer> server_;
  net::io_context signal_ioc_;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
  int lock_fd_ = -1;
  uint16_t port_ = 0;
};

App::App(ServerConfig config, AppHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(hooks))) {}
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
