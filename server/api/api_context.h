// What the REST handlers share: the store, the clock, the password-hashing pool, login
// throttling and the settings they act on. Owned by the app; outlives the router.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/thread_pool.h"
#include "server/auth/password.h"
#include "server/auth/rate_limiter.h"
#include "server/http/websocket.h"
#include "server/store/store.h"

namespace atelier::inference {
class ModelRegistry;
}
namespace atelier::metrics {
class Counter;
}
namespace atelier::jobs {
class JobService;
class ImageStore;
}  // namespace atelier::jobs

namespace atelier::rooms {
class RoomHub;
}
namespace atelier::events {
class EventLog;
}

namespace atelier::api {

class CommandLog;
class CredentialWatch;
class JobStreams;

enum class RegistrationMode { kOpen, kInvite, kClosed };

struct ApiContext {
  store::Store* store = nullptr;
  // Argon2id is slow on purpose; it runs here, never on an I/O or the writer thread.
  ThreadPool* hash_pool = nullptr;
  auth::RateLimiter* login_limiter = nullptr;
  // Registrations that reach the hash, keyed "ip:<address>" and "all" (null: unlimited).
  auth::RateLimiter* registration_ip_limiter = nullptr;
  auth::RateLimiter* registration_limiter = nullptr;
  // Passwords verified at login (atelier_password_verifications_total; null: not counted).
  metrics::Counter* password_verifications = nullptr;
  auth::PasswordCost password_cost = auth::PasswordCost::interactive();
  RegistrationMode registration = RegistrationMode::kOpen;
  std::chrono::seconds session_ttl = std::chrono::days(30);  // browser sessions expire after it
  int64_t max_projects_per_user = 200;  // projects one user may own (creating more is refused)
  int64_t max_tokens_per_user = 100;    // usable API tokens one user may hold (more: 403)
  // Uploads: the largest file (413 before the body is read), the most pixels (each side at
  // most image::kMaxUploadSide), and uploads per user per hour (429).
  int64_t max_upload_bytes = 20'000'000;
  int64_t max_upload_pixels = 16'000'000;
  int64_t max_uploads_per_user_per_hour = 200;
  // Every change to a project records its domain event here (in the same transaction).
  const events::EventLog* events = nullptr;
  std::string public_url;                    // empty: from the request's Host
  std::vector<std::string> trusted_origins;  // besides the request's own origin
  // Generation (null until the app wires them; job routes then answer 503).
  jobs::JobService* jobs = nullptr;
  JobStreams* job_streams = nullptr;  // GET /jobs/{id}/events
  const inference::ModelRegistry* models = nullptr;
  jobs::ImageStore* images = nullptr;
  ThreadPool* image_pool = nullptr;  // thumbnails: decode, resize, encode off the I/O threads
  // Live rooms over WebSocket (null until the app wires them; /api/v1/ws then answers 503).
  rooms::RoomHub* rooms = nullptr;
  CommandLog* live_commands = nullptr;
  http::WsOptions ws_options;
  // The live connections by credential, closed when it is revoked (null: only their next
  // request notices).
  CredentialWatch* credential_watch = nullptr;
  // Wall-clock time; injectable so tests can move time.
  std::function<SysTime()> now;
  // Crash tests only (ATELIER_TEST_CRASH_AT): called at named points of an upload
  // ("upload_after_put", "upload_after_commit"); empty in normal operation.
  std::function<void(std::string_view)> test_hook;
};

}  // namespace atelier::api
