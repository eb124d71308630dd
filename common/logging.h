// Process-wide logging: levels, human text or JSON lines, structured fields.
//
// Call log::init once at start-up (before threads start); until then messages go to stderr as
// text at info level. Never log secrets (tokens, passwords, cookies): callers pass only fields
// that are safe to keep.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/status.h"

namespace atelier::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };
enum class Format { kText, kJson };

// Parses "trace|debug|info|warn|error|off".
Result<Level> parse_level(std::string_view name);
// Parses "text|json".
Result<Format> parse_format(std::string_view name);

// Sends logs to stderr in `format`, dropping messages below `level`.
void init(Format format, Level level);
// Sends logs to a file instead (tests capture output this way); truncates it.
Status init_file(const std::string& path, Format format, Level level);
void flush();

bool enabled(Level level);

using FieldValue = std::variant<std::string_view, int64_t, double, bool>;
struct Field {
  std::string_view key;
  FieldValue value;
};

// Writes one record. In text format: `<time> <level> <message> key=value ...`; in JSON:
// `{"ts":"...","level":"...","msg":"...","key":value,...}` on one line.
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

// Lines operators and tools must always see (the listening address, shutdown), whatever the
// level: written as info unless logging is off.
void write_always(std::string_view message);
template <typename... Args>
void announce(fmt::format_string<Args...> f, Args&&... args) {
  write_always(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
void trace(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kTrace)) write(Level::kTrace, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kDebug)) write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kInfo)) write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kWarn)) write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kError)) write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace atelier::log
