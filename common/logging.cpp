#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/mutex.h"

namespace atelier::log {
namespace {

// spdlog only moves finished lines; we render them ourselves so text and JSON share one path
// and JSON escaping is done by a JSON library, not a format pattern.
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<Format> g_format{Format::kText};
Mutex g_logger_mu;
std::shared_ptr<spdlog::logger> g_logger ATELIER_GUARDED_BY(g_logger_mu);

std::shared_ptr<spdlog::logger> logger() {
  MutexLock lock(g_logger_mu);
  if (!g_logger) {
    g_logger = std::make_shared<spdlog::logger>("atelier",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
    g_logger->set_pattern("%v");
    g_logger->set_level(spdlog::level::trace);
    g_logger->flush_on(spdlog::level::trace);
  }
  return g_logger;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "info";
}

// RFC 3339 UTC with milliseconds: 2026-11-26T05:26:16.123Z
std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", std::string_view(buf, n), static_cast<int>(ms.count()));
}

void append_text_value(std::string& out, const FieldValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          bool quote = x.empty() || x.find_first_of(" \"=\t\n") != std::string_view::npos;
          if (quote) {
            out += nlohmann::json(std::string(x))
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          } else {
            out += x;
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else {
          out += fmt::format("{}", x);
        }
      },
      v);
}

void write_unfiltered(Level level, std::string_view message, std::initializer_list<Field> fields);

}  // namespace

Result<Level> parse_level(std::string_view name) {
  for (Level l :
       {Level::kTrace, Level::kDebug, Level::kInfo, Level::kWarn, Level::kError, Level::kOff}) {
    if (name == level_name(l)) return l;
  }
  return Status::invalid_argument(
      "unknown log level '" + std::string(name) + "' (expected trace|debug|info|warn|error|off)",
      "log_level");
}

Result<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return Status::invalid_argument(
      "unknown log format '" + std::string(name) + "' (expected text|json)", "log_format");
}

void init(Format format, Level level) {
  g_format = format;
  g_level = static_cast<int>(level);
  logger();
}

Status init_file(const std::string& path, Format format, Level level) {
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/true);
    auto l = std::make_shared<spdlog::logger>("atelier", sink);
    l->set_pattern("%v");
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    MutexLock lock(g_logger_mu);
    g_logger = l;
  } catch (const std::exception& e) {
    return Status::io_error("cannot open log file " + path + ": " + e.what());
  }
  g_format = format;
  g_level = static_cast<int>(level);
  return Status::ok();
}

void flush() {
  logger()->flush();
}

bool enabled(Level level) {
  return level != Level::kOff && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void write_always(std::string_view message) {
  if (g_level.load(std::memory_order_relaxed) == static_cast<int>(Level::kOff)) return;
  write_unfiltered(Level::kInfo, message, {});
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  write_unfiltered(level, message, fields);
}

namespace {
void write_unfiltered(Level level, std::string_view message, std::initializer_list<Field> fields) {
  std::string line;
  if (g_format.load(std::memory_order_relaxed) == Format::kJson) {
    nlohmann::json j;
    j["ts"] = timestamp();
    j["level"] = level_name(level);
    j["msg"] = message;
    for (const Field& f : fields) {
      std::visit([&](const auto& x) { j[std::string(f.key)] = x; }, f.value);
    }
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = timestamp();
    line += ' ';
    line += level_name(level);
    line += ' ';
    line += message;
    for (const Field& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      append_text_value(line, f.value);
    }
  }
  logger()->info("{}", line);
}

}  // namespace

}  // namespace atelier::log
