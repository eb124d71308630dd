// Server configuration: one typed struct, filled from four layers in increasing precedence:
//   built-in defaults < TOML file (--config / ATELIER_CONFIG) < environment (ATELIER_<KEY>) <
//   command-line flags (--<key-with-dashes>).
//
// Every option is declared once in option_specs() (key, flag, env name, help, default), so the
// CLI's --help, the TOML reader and the environment reader cannot disagree. Unknown keys in the
// file and invalid values anywhere are errors whose Status::field() names the key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/status.h"

namespace atelier {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 picks a free port; the chosen one is logged
  std::filesystem::path data_dir = "./data";
  std::filesystem::path config_file;  // the TOML file that was read, if any
  log::Format log_format = log::Format::kText;
  log::Level log_level = log::Level::kInfo;
  int io_threads = 2;
  int64_t max_body_bytes = 1 << 20;     // larger request bodies get 413
  int64_t max_header_bytes = 16 << 10;  // larger request headers get 431
  // Server-wide budget for request bodies (and WebSocket messages) being received; over it a
  // new body is refused with 503 and Retry-After.
  int64_t max_buffered_body_bytes = int64_t{64} << 20;
  int64_t max_connections = 10'000;      // open connections in total; more are closed at accept
  int64_t max_connections_per_ip = 256;  // per client address (trusted proxies exempt)
  // A request body must arrive within body_grace_ms + its length / min_body_rate (bytes per
  // second), not merely make progress.
  int64_t min_body_rate = 16 << 10;
  int64_t body_grace_ms = 10'000;
  // Reverse proxies (CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed.
  std::vector<std::string> trusted_proxies;
  int64_t header_timeout_ms = 10'000;    // whole request header must arrive within this
  int64_t read_timeout_ms = 30'000;      // each read of a request body must progress within this
  int64_t idle_timeout_ms = 60'000;      // keep-alive connections idle this long are closed
  int64_t shutdown_timeout_ms = 10'000;  // graceful shutdown deadline
  // On shutdown, keep serving this long with /readyz answering 503 before the listener closes,
  // so load balancers stop routing here first. Counts against shutdown_timeout_ms.
  int64_t shutdown_drain_delay_ms = 0;
  std::filesystem::path web_root;         // empty: the source tree's web-client/dist
  std::vector<std::string> cors_origins;  // empty: CORS off
  int db_readers = 4;
  // Who may create an account: "open" (anyone), "invite" (with a project invite code), "closed"
  // (only `atelier admin create-user`). The first account can always be created.
  std::string registration = "open";
  // The address people use to reach this server (for invite links), e.g.
  // "https://art.example.com". Empty: derived from each request's Host header.
  std::string public_url;
  int64_t session_ttl_s = 30 * 24 * 3600;      // browser sessions expire after this
  int login_max_failures = 5;                  // wrong passwords per username (and per address) ...
  int64_t login_lockout_s = 15 * 60;           // ... within this window lock it for this long
  int64_t registrations_per_ip_per_hour = 10;  // open/invite registration throttle, per address
  int64_t registrations_per_hour = 100;        // ... and for the whole instance
  int64_t max_projects_per_user = 200;         // projects one user may own
  int64_t max_tokens_per_user = 100;           // usable API tokens one user may hold
  // Uploads (POST /projects/{id}/uploads): the largest file, the most pixels (each side is at
  // most 8192 besides), and how many one user may upload per hour across projects.
  int64_t max_upload_bytes = 20'000'000;
  int64_t max_upload_pixels = 16'000'000;
  int64_t max_uploads_per_user_per_hour = 200;
  int64_t checkpoint_interval_ms = 30'000;
  // "full": every commit and image file is on disk before it is acknowledged (survives power
  // loss). "normal": they survive the process being killed, not a power loss; much faster on
  // disks with slow fsync.
  std::string sync_mode = "full";

  // Generation. One worker thread per entry: "cpu", "cuda:0", "cuda:1", ..., or "auto" (every
  // CUDA device when the CUDA build of libtorch sees one, else one CPU worker).
  std::vector<std::string> workers = {"cpu"};
  int torch_threads = 0;           // CPU intra-op threads for torch; 0: one per core
  bool enable_null_model = false;  // offer the `null` test model (tests, benchmarks)
  int64_t null_step_ms = 0;        // the null model sleeps this long per step (tests)
  std::filesystem::path models_dir = "./models";  // each diffusers folder in it is an `sd` model
  // LoRA files (*.safetensors) jobs may apply; empty: `<models_dir>/loras` (loras_dir_of()).
  std::filesystem::path loras_dir;
  // The CLIP vocabulary single-file checkpoints are tokenized with; empty: the shipped copy.
  std::filesystem::path clip_vocab;
  int64_t sd_cache_mb = 8192;           // per worker: loaded pipelines beyond this are evicted
  bool sd_fp16 = true;                  // Stable Diffusion in fp16 on CUDA (fp32 on the CPU)
  int64_t job_lease_ms = 30'000;        // a running job without progress for this long is re-queued
  int job_max_attempts = 3;             // claims before a job that keeps dying is failed
  int64_t max_queued_per_user = 1'000;  // more queued jobs than this per user get 429
  int64_t queue_ageing_ms = 60'000;     // each wait of this long adds 1 to a job's priority
  int64_t job_reaper_interval_ms = 1'000;  // how often expired leases are looked for
  // Image files no row refers to (a crash between write and commit) are removed by a periodic
  // sweep once older than the grace period.
  int64_t orphan_sweep_interval_ms = 10 * 60'000;
  int64_t orphan_grace_ms = 10 * 60'000;

  // Live rooms (WebSocket).
  int64_t ws_queue_bytes = 1 << 20;     // per connection: queued messages beyond this are shed
  int64_t ws_idle_timeout_ms = 30'000;  // silent clients are pinged at half this, dropped at it
  int64_t preview_interval_ms = 250;    // at most one live preview per job this often
  // true: a broadcast writes each idle connection's frames from the sending thread, and bursts
  // go out in one system call per connection; false: plain strand-serialised Beast writes, one
  // async_write in flight per connection (server/http/ws_session.h).
  bool ws_direct_writes = true;
};

struct OptionSpec {
  enum class Kind { kString, kInt, kPath, kStringList, kBool };
  std::string key;   // TOML key, snake_case: "max_body_bytes"
  std::string flag;  // "--max-body-bytes"
  std::string env;   // "ATELIER_MAX_BODY_BYTES"
  Kind kind;
  std::string help;
};

// Every option, in the order --help lists them.
const std::vector<OptionSpec>& option_specs();

struct ConfigSources {
  // TOML file to read (from --config or ATELIER_CONFIG); none when empty.
  std::filesystem::path file;
  // Environment snapshot: name -> value. Only ATELIER_* names are looked at.
  std::map<std::string, std::string> env;
  // Options given on the command line: key -> raw value (lists comma-separated).
  std::map<std::string, std::string> flags;
};

// Builds the configuration from the layers. Errors name the key (Status::field()) and say which
// layer held the bad value. `warnings` collects non-fatal notes (unknown ATELIER_* variables).
Result<ServerConfig> load_config(const ConfigSources& sources,
                                 std::vector<std::string>* warnings = nullptr);

// The process environment as a map (for ConfigSources::env).
std::map<std::string, std::string> environment_snapshot();

// The default shown in --help for `key`.
std::string default_value_text(const std::string& key);

// The LoRA directory in effect: `loras_dir`, or `<models_dir>/loras` when it is not set.
std::filesystem::path loras_dir_of(const ServerConfig& config);

}  // namespace atelier
