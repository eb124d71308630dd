// Fuzz target for JSON request bodies: any bytes as the body of POST /projects/{id}/jobs (the
// real parse_job_request against a registry with LoRAs and size conditioning), then through
// JsonBody with the readers the project, invite, token and login handlers use, and through the
// text checks (server/api/text_checks.h) compared with a reference UTF-8 decoder.
//
// Oracles beyond "no crash, no sanitizer report":
//   - every refusal is kInvalidArgument and names a field ("body", "Content-Type" or a field);
//   - an error message is valid UTF-8 without control characters and of bounded size (it goes
//     back to the client as JSON; keys are quoted through shown_key);
//   - an accepted job request is within the bounds the header promises;
//   - first_invalid_utf8 agrees with the reference, count_chars counts its code points, and
//     shown_key yields valid, control-free UTF-8 of at most 64 bytes plus "...".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "server/api/job_request.h"
#include "server/api/json_body.h"
#include "server/api/text_checks.h"
#include "server/inference/model_registry.h"
#include "server/inference/null_generator.h"

namespace {

using atelier::Result;
using atelier::Status;
using atelier::StatusCode;
namespace api = atelier::api;
namespace inference = atelier::inference;

void check(bool ok) {
  if (!ok) std::abort();
}

// Unicode 15 table 3-7, written differently from text_checks.cpp (decode, then range-check the
// code point) so that the two can disagree. Also counts the code points.
std::optional<size_t> reference_invalid_utf8(std::string_view s, size_t* chars) {
  size_t i = 0;
  *chars = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len = b0 < 0x80 ? 1 : b0 >> 5 == 6 ? 2 : b0 >> 4 == 14 ? 3 : b0 >> 3 == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return i;
    char32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
    ++*chars;
  }
  return std::nullopt;
}

bool clean_text(std::string_view s) {
  size_t chars = 0;
  return !reference_invalid_utf8(s, &chars) && !api::has_control_chars(s, false);
}

void check_refusal(const Status& st) {
  check(st.code() == StatusCode::kInvalidArgument);
  // A body may use "" as a key; an error about that key names it as it is (empty).
  check((!st.field().empty() || st.message().starts_with("field ''")) && clean_text(st.field()));
  check(!st.message().empty() && st.message().size() < 4096 && clean_text(st.message()));
}

template <typename T>
bool ok_or_refused(const Result<T>& r) {
  if (!r.is_ok()) check_refusal(r.status());
  return r.is_ok();
}

void check_text_functions(std::string_view s) {
  size_t chars = 0;
  const std::optional<size_t> bad = reference_invalid_utf8(s, &chars);
  check(api::first_invalid_utf8(s) == bad);
  if (!bad) check(api::count_chars(s) == chars);
  api::has_control_chars(s, true);
  const std::string shown = api::shown_key(s);
  check(shown.size() <= 64 + 3);
  if (!bad) check(clean_text(shown));
}

// The null model, one SDXL model with size conditioning and LoRAs, and a few LoRAs: enough for
// every branch of parse_job_request that needs no database.
const inference::ModelRegistry& registry() {
  static const inference::ModelRegistry models = [] {
    inference::ModelRegistry r;
    check(r.add(inference::null_model_entry()).is_ok());
    inference::ModelEntry xl = inference::null_model_entry();
    xl.info.id = "xl";
    xl.info.family = "sdxl";
    xl.info.hash = std::string(64, 'a');
    xl.info.size_conditioning = true;
    xl.info.max_loras = 3;
    xl.info.width = {256, 2048, 1024, 8};
    xl.info.height = {256, 2048, 1024, 8};
    check(r.add(std::move(xl)).is_ok());
    inference::ModelEntry gone = inference::null_model_entry();
    gone.info.id = "gone";
    gone.info.available = false;
    gone.info.unavailable_reason = "missing";
    check(r.add(std::move(gone)).is_ok());
    char c = 'b';
    for (const char* name : {"ink", "grain", "a:b"}) {
      check(r.add_lora({name, "sdxl", std::string(64, c++), true, ""}).is_ok());
    }
    check(r.add_lora({"broken", "sdxl", "", false, "no weights"}).is_ok());
    return r;
  }();
  return models;
}

void check_job_request(const std::string& body) {
  atelier::http::Request request;
  request.method = atelier::http::Method::kPost;
  request.body = body;
  request.headers.set("Content-Type", "application/json; charset=utf-8");
  auto job = api::parse_job_request(request, registry());
  if (!ok_or_refused(job)) return;
  const inference::ModelEntry* model = registry().find(job->model);
  check(model && model->info.available);
  check(!job->prompt.empty() && !api::first_invalid_utf8(job->prompt));
  check(!api::has_control_chars(job->prompt, true));
  check(job->resolved_loras.size() <= api::kMaxLorasPerJob);
  check(job->resolved_loras.size() <= static_cast<size_t>(model->info.max_loras));
  for (const auto& l : job->resolved_loras) {
    check(registry().find_lora(l.name) != nullptr);
    check(l.weight >= -api::kMaxLoraWeight && l.weight <= api::kMaxLoraWeight);
  }
  check(job->canonical_hash.size() == 64);
}

// The readers of the other handlers that take bodies, in one pass over one body.
void check_other_readers(std::string_view body) {
  for (auto policy : {api::BodyPolicy::kRequired, api::BodyPolicy::kOptional}) {
    auto parsed = api::JsonBody::parse_text(body, policy);
    if (!ok_or_refused(parsed)) continue;
    api::JsonBody b = *parsed;  // a copy per reader: each declares its own fields
    ok_or_refused(b.required_string("name", {.min_chars = 1, .max_chars = 100}));
    ok_or_refused(b.optional_string("description", {.max_chars = 4000, .multiline = true}));
    ok_or_refused(b.required_enum("role", {"owner", "editor", "viewer"}));
    ok_or_refused(b.optional_int("max_uses", 1, 1000));
    ok_or_refused(b.optional_int("expires_in_s", 60, int64_t{30} * 24 * 3600));
    ok_or_refused(b.required_bool("disabled"));
    ok_or_refused(b.optional_number("guidance", -1e6, 1e6));
    ok_or_refused(b.optional_int_array("size", 2, 8, 8192));
    auto items = b.optional_object_array("items", 4);
    if (ok_or_refused(items) && *items) {
      for (size_t i = 0; i < (*items)->size(); ++i) {
        api::JsonBody& item = (**items)[i];
        const std::string prefix = "items[" + std::to_string(i) + "].";
        ok_or_refused(item.required_string(prefix + "name", 255));
        ok_or_refused(item.optional_number(prefix + "weight", -4, 4));
        ok_or_refused(item.optional_object_array(prefix + "items", 2));
        Status st = item.finish();
        if (!st.is_ok()) check_refusal(st);
      }
    }
    Status st = b.finish();
    if (!st.is_ok()) check_refusal(st);
    // A reader that declares nothing: any field is refused.
    Status none = parsed->finish();
    check(none.is_ok() == (parsed->size() == 0));
    if (!none.is_ok()) check_refusal(none);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  check_text_functions(body);
  check_job_request(body);
  check_other_readers(body);
  return 0;
}
