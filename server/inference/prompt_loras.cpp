#include "server/inference/prompt_loras.h"

#include <charconv>
#include <cmath>
#include <optional>

namespace atelier::inference {

namespace {

constexpr std::string_view kOpen = "<lora:";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A plain decimal number: optional sign, digits with at most one '.', optional exponent.
std::optional<double> parse_weight(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && (text.front() == '+' || text.front() == '-')) return std::nullopt;
  }
  if (text.empty() || text.find_first_not_of("0123456789.eE+-") != std::string_view::npos) {
    return std::nullopt;
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// The LoRA named by a tag's body (what lies between "<lora:" and ">"), or nullopt when the
// tag is malformed.
std::optional<LoraRef> parse_body(std::string_view body) {
  LoraRef ref;
  std::string_view name = body;
  if (size_t colon = body.rfind(':'); colon != std::string_view::npos) {
    auto weight = parse_weight(body.substr(colon + 1));
    if (!weight) return std::nullopt;
    ref.weight = *weight;
    name = body.substr(0, colon);
  }
  name = trim(name);
  if (name.empty()) return std::nullopt;
  ref.name = std::string(name);
  return ref;
}

}  // namespace

PromptLoras split_prompt_loras(std::string_view prompt) {
  PromptLoras out;
  out.prompt.reserve(prompt.size());
  size_t pos = 0;
  while (pos < prompt.size()) {
    size_t open = prompt.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    size_t body_start = open + kOpen.size();
    // The tag ends at the first '>'; a '<' or a line break before it makes it malformed.
    size_t close = prompt.find_first_of("<>\n\r", body_start);
    std::optional<LoraRef> ref;
    if (close != std::string_view::npos && prompt[close] == '>') {
      ref = parse_body(prompt.substr(body_start, close - body_start));
    }
    if (!ref) {
      // Keep "<lora:" as text and look again after it (a well-formed tag may follow).
      out.prompt.append(prompt.substr(pos, body_start - pos));
      pos = body_start;
      continue;
    }
    out.prompt.append(prompt.substr(pos, open - pos));
    out.loras.push_back(std::move(*ref));
    pos = close + 1;
  }
  if (pos < prompt.size()) out.prompt.append(prompt.substr(pos));
  return out;
}

}  // namespace atelier::inference
