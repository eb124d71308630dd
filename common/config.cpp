#include "common/config.h"

#include <toml++/toml.h>

#include <charconv>
#include <functional>
#include <sstream>
#include <thread>

#include "common/cidr.h"

extern char** environ;

namespace atelier {
namespace {

using Setter = std::function<Status(ServerConfig&, const std::string&)>;
using Getter = std::function<std::string(const ServerConfig&)>;

struct OptionDef {
  OptionSpec spec;
  Setter set;
  Getter get;
};

std::string to_upper_env(const std::string& key) {
  std::string out = "ATELIER_";
  for (char c : key) out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return out;
}

std::string to_flag(const std::string& key) {
  std::string out = "--";
  for (char c : key) out += c == '_' ? '-' : c;
  return out;
}

Status bad(const std::string& key, const std::string& why) {
  return Status::invalid_argument("invalid value for '" + key + "': " + why, key);
}

Result<int64_t> parse_int(const std::string& key, const std::string& text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return bad(key, "'" + text + "' is not an integer");
  }
  if (v < lo || v > hi) {
    return bad(key, std::to_string(v) + " is out of range " + std::to_string(lo) + ".." +
                        std::to_string(hi));
  }
  return v;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::string join_list(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// An integer option stored in `member`, valid within [lo, hi].
template <typename T>
OptionDef int_option(const char* key, T ServerConfig::*member, int64_t lo, int64_t hi,
                     const char* help) {
  std::string k = key;
  return {{k, to_flag(k), to_upper_env(k), OptionSpec::Kind::kInt, help},
          [k, member, lo, hi](ServerConfig& c, const std::string& text) -> Status {
            auto v = parse_int(k, text, lo, hi);
            if (!v) return v.status();
            c.*member = static_cast<T>(*v);
            return Status::ok();
          },
          [member](const ServerConfig& c) { return std::to_string(c.*member); }};
}

OptionDef bool_option(const char* key, bool ServerConfig::*member, const char* help) {
  std::string k = key;
  return {{k, to_flag(k), to_upper_env(k), OptionSpec::Kind::kBool, help},
          [k, member](ServerConfig& c, const std::string& text) -> Status {
            if (text == "true" || text == "1" || text == "yes" || text == "on") {
              c.*member = true;
            } else if (text == "false" || text == "0" || text == "no" || text == "off") {
              c.*member = false;
            } else {
              return bad(k, "'" + text + "' is not one of true|false");
            }
            return Status::ok();
          },
          [member](const ServerConfig& c) { return std::string(c.*member ? "true" : "false"); }};
}

OptionDef path_option(const char* key, std::filesystem::path ServerConfig::*member,
                      const char* help) {
  std::string k = key;
  return {{k, to_flag(k), to_upper_env(k), OptionSpec::Kind::kPath, help},
          [k, member](ServerConfig& c, const std::string& text) -> Status {
            if (text.empty()) return bad(k, "must not be empty");
            if (text.find('\0') != std::string::npos) return bad(k, "contains a NUL byte");
            c.*member = text;
            return Status::ok();
          },
          [member](const ServerConfig& c) { return (c.*member).string(); }};
}

bool valid_origin(const std::string& o) {
  // scheme://host[:port], no path: what browsers send in the Origin header.
  size_t sep = o.find("://");
  if (sep == std::string::npos) return false;
  std::string scheme = o.substr(0, sep);
  if (scheme != "http" && scheme != "https") return false;
  std::string rest = o.substr(sep + 3);
  return !rest.empty() && rest.find('/') == std::string::npos;
}

const std::vector<OptionDef>& option_defs() {
  static const std::vector<OptionDef> defs = [] {
    std::vector<OptionDef> d;
    d.push_back({{"host", "--host", "ATELIER_HOST", OptionSpec::Kind::kString,
                  "address to listen on (use 0.0.0.0 to accept remote connections)"},
                 [](ServerConfig& c, const std::string& t) -> Status {
                   if (t.empty()) return bad("host", "must not be empty");
                   c.host = t;
                   return Status::ok();
                 },
                 [](const ServerConfig& c) { return c.host; }});
    d.push_back(int_option("port", &ServerConfig::port, 0, 65535,
                           "TCP port to listen on; 0 picks a free port and logs it"));
    d.push_back(
        path_option("data_dir", &ServerConfig::data_dir, "directory for the database and images"));
    d.push_back(path_option("config", &ServerConfig::config_file, "TOML configuration file"));
    d.push_back({{"log_format", "--log-format", "ATELIER_LOG_FORMAT", OptionSpec::Kind::kString,
                  "log output: text or json (one JSON object per line)"},
                 [](ServerConfig& c, const std::string& t) -> Status {
                   auto f = log::parse_format(t);
                   if (!f) return bad("log_format", "'" + t + "' is not one of text|json");
                   c.log_format = *f;
                   return Status::ok();
                 },
                 [](const ServerConfig& c) {
                   return std::string(c.log_format == log::Format::kJson ? "json" : "text");
                 }});
    d.push_back({{"log_level", "--log-level", "ATELIER_LOG_LEVEL", OptionSpec::Kind::kString,
                  "least severe level logged: trace|debug|info|warn|error|off"},
                 [](ServerConfig& c, const std::string& t) -> Status {
                   auto l = log::parse_level(t);
                   if (!l) {
                     return bad("log_level",
                                "'" + t + "' is not one of trace|debug|info|warn|error|off");
                   }
                   c.log_level = *l;
                   return Status::ok();
                 },
                 [](const ServerConfig& c) {
                   static const char* names[] = {"trace", "debug", "info", "warn", "error", "off"};
                   return std::string(names[static_cast<int>(c.log_level)]);
                 }});
    d.push_back(
        int_option("io_threads", &ServerConfig::io_threads, 1, 256, "threads running network I/O"));
    d.push_back(int_option("max_body_bytes", &ServerConfig::max_body_bytes, 1, int64_t{1} << 30,
                           "largest accepted request body; larger ones get 413"));
    d.push_back(int_option("max_header_bytes", &ServerConfig::max_header_bytes, 1024,
                           int64_t{1} << 20, "largest accepted request header; larger get 431"));
    d.push_back(int_option("max_buffered_body_bytes", &ServerConfig::max_buffered_body_bytes,
                           int64_t{1} << 16, int64_t{1} << 40,
                           "server-wide budget for request bodies and WebSocket messages being "
                           "received; over it new ones get 503"));
    d.push_back(int_option("max_connections", &ServerConfig::max_connections, 1, 10'000'000,
                           "open connections in total; more are closed at once"));
    d.push_back(int_option("max_connections_per_ip", &ServerConfig::max_connections_per_ip, 1,
                           10'000'000, "open connections per client address"));
    d.push_back(int_option("min_body_rate", &ServerConfig::min_body_rate, 1, int64_t{1} << 40,
                           "bytes per second a request body must at least arrive at"));
    d.push_back(int_option("body_grace_ms", &ServerConfig::body_grace_ms, 1, int64_t{3'600'000},
                           "time a request body has on top of its length / min_body_rate"));
    d.push_back({{"trusted_proxies", "--trusted-proxies", "ATELIER_TRUSTED_PROXIES",
                  OptionSpec::Kind::kStringList,
                  "reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For and "
                  "X-Forwarded-Proto are believed (default: none)"},
                 [](ServerConfig& c, const std::string& t) -> Status {
                   auto list = split_list(t);
                   for (const auto& cidr : list) {
                     if (!parse_cidr(cidr).is_ok()) {
                       return bad("trusted_proxies", "'" + cidr + "' is not an address or CIDR");
                     }
                   }
                   c.trusted_proxies = std::move(list);
                   return Status::ok();
                 },
                 [](const ServerConfig& c) { return join_list(c.trusted_proxies); }});
    d.push_back(int_option("header_timeout_ms", &ServerConfig::header_timeout_ms, 1,
                           int64_t{3'600'000}, "time allowed for a request header to arrive"));
    d.push_back(int_option("read_timeout_ms", &ServerConfig::read_timeout_ms, 1, int64_t{3'600'000},
                           "time allowed for each read of a request body"));
    d.push_back(int_option("idle_timeout_ms", &ServerConfig::idle_timeout_ms, 1,
                           int64_t{86'400'000}, "idle keep-alive connections are closed after"));
    d.push_back(int_option("shutdown_timeout_ms", &ServerConfig::shutdown_timeout_ms, 1,
                           int64_t{3'600'000}, "deadline for graceful shutdown"));
    d.push_back(int_option("shutdown_drain_delay_ms", &ServerConfig::shutdown_drain_delay_ms, 0,
                           int64_t{600'000},
                           "on shutdown, serve this long with /readyz 503 before closing"));
    d.push_back(path_option("web_root", &ServerConfig::web_root,
                            "built web client to serve (default: web-client/dist in the source)"));
    d.push_back(
        {{"cors_origins", "--cors-origins", "ATELIER_CORS_ORIGINS", OptionSpec::Kind::kStringList,
          "origins allowed cross-origin requests, comma-separated (default: none)"},
         [](ServerConfig& c, const std::string& t) -> Status {
           auto list = split_list(t);
           for (const auto& o : list) {
             if (!valid_origin(o)) {
               return bad("cors_origins", "'" + o + "' is not an origin like https://host:port");
             }
           }
           c.cors_origins = std::move(list);
           return Status::ok();
         },
         [](const ServerConfig& c) { return join_list(c.cors_origins); }});
    d.push_back(
        {{"registration", "--registration", "ATELIER_REGISTRATION", OptionSpec::Kind::kString,
          "who may sign up: open, invite (needs a project invite code) or closed"},
         [](ServerConfig& c, const std::string& t) -> Status {
           if (t != "open" && t != "invite" && t != "closed") {
             return bad("registration", "'" + t + "' is not one of open|invite|closed");
           }
           c.registration = t;
           return Status::ok();
         },
         [](const ServerConfig& c) { return c.registration; }});
    d.push_back({{"public_url", "--public-url", "ATELIER_PUBLIC_URL", OptionSpec::Kind::kString,
                  "address people reach this server at, for invite links (default: from Host)"},
                 [](ServerConfig& c, const std::string& t) -> Status {
                   std::string url = t;
                   while (!url.empty() && url.back() == '/') url.pop_back();
                   if (!url.empty() && !valid_origin(url)) {
                     return bad("public_url", "'" + t + "' is not like https://host[:port]");
                   }
                   c.public_url = url;
                   return Status::ok();
                 },
                 [](const ServerConfig& c) { return c.public_url; }});
    d.push_back(int_option("session_ttl_s", &ServerConfig::session_ttl_s, 60,
                           int64_t{365} * 24 * 3600, "browser sessions expire after (seconds)"));
    d.push_back(int_option("login_max_failures", &ServerConfig::login_max_failures, 1, 1'000,
                           "wrong passwords per username or address that lock it"));
    d.push_back(int_option("login_lockout_s", &ServerConfig::login_lockout_s, 1,
                           int64_t{7} * 24 * 3600,
                           "window in which those failures count, and how long the lock lasts"));
    d.push_back(int_option("registrations_per_ip_per_hour",
                           &ServerConfig::registrations_per_ip_per_hour, 1, 1'000'000,
                           "accounts one address may register per hour"));
    d.push_back(int_option("registrations_per_hour", &ServerConfig::registrations_per_hour, 1,
                           1'000'000, "accounts the whole instance accepts per hour"));
    d.push_back(int_option("max_projects_per_user", &ServerConfig::max_projects_per_user, 1,
                           1'000'000, "projects one user may own"));
    d.push_back(int_option("max_tokens_per_user", &ServerConfig::max_tokens_per_user, 1, 1'000'000,
                           "usable (unrevoked, unexpired) API tokens one user may hold"));
    d.push_back(int_option("max_upload_bytes", &ServerConfig::max_upload_bytes, 1024,
                           int64_t{1} << 30, "largest image file one upload may send, bytes"));
    d.push_back(int_option("max_upload_pixels", &ServerConfig::max_upload_pixels, 1,
                           int64_t{8192} * 8192,
                           "most pixels (width x height) of an uploaded image"));
    d.push_back(int_option("max_uploads_per_user_per_hour",
                           &ServerConfig::max_uploads_per_user_per_hour, 1, 1'000'000,
                           "images one user may upload per hour, across projects"));
    d.push_back(int_option("db_readers", &ServerConfig::db_readers, 1, 64,
                           "read-only database connections"));
    d.push_back(int_option("checkpoint_interval_ms", &ServerConfig::checkpoint_interval_ms, 100,
                           int64_t{86'400'000}, "how often the database WAL is checkpointed"));
    d.push_back({{"sync_mode", "--sync-mode", "ATELIER_SYNC_MODE", OptionSpec::Kind::kString,
                  "full: commits and images survive power loss; normal: they survive a killed "
                  "process only, faster on slow disks"},
                 [](ServerConfig& c, const std::string& t) -> Status {
                   if (t != "full" && t != "normal") {
                     return bad("sync_mode", "'" + t + "' is not one of full|normal");
                   }
                   c.sync_mode = t;
                   return Status::ok();
                 },
                 [](const ServerConfig& c) { return c.sync_mode; }});
    d.push_back(
        {{"workers", "--workers", "ATELIER_WORKERS", OptionSpec::Kind::kStringList,
          "generation workers, one per device: cpu, cuda:N, or auto (every CUDA device, else cpu)"},
         [](ServerConfig& c, const std::string& t) -> Status {
           auto list = split_list(t);
           if (list.empty()) return bad("workers", "needs at least one device");
           for (const auto& w : list) {
             bool cuda = w == "cuda" || (w.rfind("cuda:", 0) == 0 && w.size() > 5 &&
                                         w.find_first_not_of("0123456789", 5) == std::string::npos);
             if (w != "cpu" && w != "auto" && !cuda) {
               return bad("workers", "'" + w + "' is not one of cpu, cuda:N, auto");
             }
           }
           c.workers = std::move(list);
           return Status::ok();
         },
         [](const ServerConfig& c) { return join_list(c.workers); }});
    d.push_back(int_option("torch_threads", &ServerConfig::torch_threads, 0, 1024,
                           "CPU threads torch uses per operation; 0 means one per core"));
    d.push_back(bool_option("enable_null_model", &ServerConfig::enable_null_model,
                            "offer the instant `null` test model (tests and benchmarks)"));
    d.push_back(int_option("null_step_ms", &ServerConfig::null_step_ms, 0, 60'000,
                           "the null model sleeps this long per step (tests)"));
    d.push_back(path_option("models_dir", &ServerConfig::models_dir,
                            "each diffusers model folder and single-file checkpoint "
                            "(*.safetensors) in it becomes an `sd` model"));
    d.push_back(path_option("clip_vocab", &ServerConfig::clip_vocab,
                            "CLIP's bpe_simple_vocab_16e6.txt.gz for single-file checkpoints "
                            "(default: the copy Atelier installs)"));
    d.push_back(path_option("loras_dir", &ServerConfig::loras_dir,
                            "LoRA files (*.safetensors) jobs may apply (default: "
                            "<models_dir>/loras)"));
    d.push_back(int_option("sd_cache_mb", &ServerConfig::sd_cache_mb, 64, int64_t{1} << 22,
                           "per worker: memory for loaded Stable Diffusion models (least recently "
                           "used ones are unloaded)"));
    d.push_back(bool_option("sd_fp16", &ServerConfig::sd_fp16,
                            "run Stable Diffusion in fp16 on CUDA workers"));
    d.push_back(int_option("job_lease_ms", &ServerConfig::job_lease_ms, 100, 3'600'000,
                           "a running job that makes no progress for this long is re-queued"));
    d.push_back(int_option("job_max_attempts", &ServerConfig::job_max_attempts, 1, 100,
                           "how often a job whose worker died is retried before it fails"));
    d.push_back(int_option("max_queued_per_user", &ServerConfig::max_queued_per_user, 1, 1'000'000,
                           "queued jobs one user may have; more get 429"));
    d.push_back(int_option("queue_ageing_ms", &ServerConfig::queue_ageing_ms, 0,
                           int64_t{86'400'000} * 365,
                           "each wait this long raises a job's priority by 1 (0: no ageing)"));
    d.push_back(int_option("job_reaper_interval_ms", &ServerConfig::job_reaper_interval_ms, 10,
                           60'000, "how often running jobs are checked for expired leases"));
    d.push_back(int_option("orphan_sweep_interval_ms", &ServerConfig::orphan_sweep_interval_ms,
                           1'000, int64_t{86'400'000},
                           "how often image files no row refers to are looked for"));
    d.push_back(
        int_option("orphan_grace_ms", &ServerConfig::orphan_grace_ms, 0, int64_t{86'400'000} * 30,
                   "age an unreferenced image file must reach before the sweep removes it"));
    d.push_back(int_option("ws_queue_bytes", &ServerConfig::ws_queue_bytes, 16 << 10, 1 << 30,
                           "per WebSocket connection: bytes queued for a slow reader before "
                           "progress and previews are dropped (and, past that, it must resume)"));
    d.push_back(int_option("ws_idle_timeout_ms", &ServerConfig::ws_idle_timeout_ms, 200, 3'600'000,
                           "a silent WebSocket client is pinged after half this and dropped "
                           "after all of it"));
    d.push_back(int_option("preview_interval_ms", &ServerConfig::preview_interval_ms, 0, 60'000,
                           "live previews: at most one per running job this often"));
    d.push_back(bool_option("ws_direct_writes", &ServerConfig::ws_direct_writes,
                            "WebSocket fast path: write to idle connections from the sending "
                            "thread and gather bursts; false: plain Beast writes on each "
                            "connection's strand"));
    return d;
  }();
  return defs;
}

const OptionDef* find_def(const std::string& key) {
  for (const auto& d : option_defs()) {
    if (d.spec.key == key) return &d;
  }
  return nullptr;
}

// TOML values are checked for their type, then go through the same string setter as the other
// layers so validation lives in one place.
Result<std::string> toml_value_text(const OptionDef& def, const toml::node& node) {
  const std::string& key = def.spec.key;
  switch (def.spec.kind) {
    case OptionSpec::Kind::kInt:
      if (auto v = node.value<int64_t>(); v && node.is_integer()) return std::to_string(*v);
      return bad(key, "expected an integer in the config file");
    case OptionSpec::Kind::kString:
    case OptionSpec::Kind::kPath:
      if (auto v = node.value<std::string>(); v && node.is_string()) return *v;
      return bad(key, "expected a string in the config file");
    case OptionSpec::Kind::kBool:
      if (auto v = node.value<bool>(); v && node.is_boolean())
        return std::string(*v ? "true" : "false");
      return bad(key, "expected true or false in the config file");
    case OptionSpec::Kind::kStringList: {
      const toml::array* arr = node.as_array();
      if (!arr) return bad(key, "expected an array of strings in the config file");
      std::vector<std::string> items;
      for (const auto& el : *arr) {
        auto s = el.value<std::string>();
        if (!s || !el.is_string())
          return bad(key, "expected an array of strings in the config file");
        if (s->find(',') != std::string::npos) return bad(key, "an entry contains ','");
        items.push_back(*s);
      }
      return join_list(items);
    }
  }
  return bad(key, "unsupported type");
}

Status apply_file(ServerConfig& cfg, const std::filesystem::path& file) {
  toml::table table;
  try {
    table = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "cannot parse config file " << file.string() << " at line " << e.source().begin.line
        << ": " << e.description();
    return Status::invalid_argument(msg.str(), "config");
  } catch (const std::exception& e) {
    return Status::invalid_argument("cannot read config file " + file.string() + ": " + e.what(),
                                    "config");
  }
  for (const auto& [k, node] : table) {
    std::string key(k.str());
    const OptionDef* def = find_def(key);
    if (!def || key == "config") {
      return Status::invalid_argument("unknown key '" + key + "' in config file " + file.string(),
                                      key);
    }
    auto text = toml_value_text(*def, node);
    if (!text) return text.status().with_context("config file " + file.string());
    ATELIER_RETURN_IF_ERROR(def->set(cfg, *text).with_context("config file " + file.string()));
  }
  return Status::ok();
}

}  // namespace

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> out;
    for (const auto& d : option_defs()) out.push_back(d.spec);
    return out;
  }();
  return specs;
}

std::string default_value_text(const std::string& key) {
  const OptionDef* def = find_def(key);
  return def ? def->get(ServerConfig{}) : std::string();
}

std::filesystem::path loras_dir_of(const ServerConfig& config) {
  return config.loras_dir.empty() ? config.models_dir / "loras" : config.loras_dir;
}

Result<ServerConfig> load_config(const ConfigSources& sources, std::vector<std::string>* warnings) {
  ServerConfig cfg;

  // Which file: flag beats environment.
  std::filesystem::path file = sources.file;
  if (auto it = sources.flags.find("config"); it != sources.flags.end()) file = it->second;
  if (file.empty()) {
    if (auto it = sources.env.find("ATELIER_CONFIG"); it != sources.env.end()) file = it->second;
  }
  if (!file.empty()) {
    if (!std::filesystem::exists(file)) {
      return Status::invalid_argument("config file " + file.string() + " does not exist", "config");
    }
    ATELIER_RETURN_IF_ERROR(apply_file(cfg, file));
    cfg.config_file = file;
  }

  for (const auto& [name, value] : sources.env) {
    if (name.rfind("ATELIER_", 0) != 0 || name == "ATELIER_CONFIG") continue;
    const OptionDef* def = nullptr;
    for (const auto& d : option_defs()) {
      if (d.spec.env == name) def = &d;
    }
    if (!def) {
      // Other tools use ATELIER_* names too (test harnesses, scripts): note, don't fail.
      if (warnings) warnings->push_back("ignoring unknown environment variable " + name);
      continue;
    }
    ATELIER_RETURN_IF_ERROR(def->set(cfg, value).with_context("environment " + name));
  }

  for (const auto& [key, value] : sources.flags) {
    if (key == "config") continue;
    const OptionDef* def = find_def(key);
    if (!def) return Status::invalid_argument("unknown option '" + key + "'", key);
    ATELIER_RETURN_IF_ERROR(def->set(cfg, value).with_context("flag " + def->spec.flag));
  }
  return cfg;
}

std::map<std::string, std::string> environment_snapshot() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return out;
}

}  // namespace atelier
