// Status and Result<T>: how every module reports failure across its boundary.
//
// A Status is either OK or carries a code, a human message and, where the failure is about one
// input, the name of the field at fault (so the HTTP edge can answer 400 {"field": ...}).
// Functions that can fail return Status or Result<T>; exceptions do not cross module boundaries.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace atelier {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // caller's input is wrong (HTTP 400)
  kNotFound,            // (404)
  kAlreadyExists,       // (409)
  kPermissionDenied,    // (403)
  kUnauthenticated,     // (401)
  kFailedPrecondition,  // state does not allow it (409)
  kResourceExhausted,   // limits, quotas, full queues (429 / 413)
  kGone,                // existed, no longer usable: expired or used-up invites (410)
  kUnavailable,         // try again later (503)
  kIoError,             // file system, database, network
  kCorruption,          // stored data does not parse
  kInternal,            // a bug
  kCancelled,           // the operation was cancelled on request (a job's cancel) (409)
  kUnprocessable,       // well-formed but contradicts earlier state: idempotency key reuse (422)
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string field = {})
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string msg, std::string field = {}) {
    return Status(StatusCode::kInvalidArgument, std::move(msg), std::move(field));
  }
  static Status not_found(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
  static Status already_exists(std::string msg) {
    return Status(StatusCode::kAlreadyExists, std::move(msg));
  }
  static Status failed_precondition(std::string msg) {
    return Status(StatusCode::kFailedPrecondition, std::move(msg));
  }
  static Status unavailable(std::string msg) {
    return Status(StatusCode::kUnavailable, std::move(msg));
  }
  static Status io_error(std::string msg) { return Status(StatusCode::kIoError, std::move(msg)); }
  static Status corruption(std::string msg) {
    return Status(StatusCode::kCorruption, std::move(msg));
  }
  static Status internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }
  static Status cancelled(std::string msg) {
    return Status(StatusCode::kCancelled, std::move(msg));
  }
  static Status unprocessable(std::string msg, std::string field = {}) {
    return Status(StatusCode::kUnprocessable, std::move(msg), std::move(field));
  }
  static Status resource_exhausted(std::string msg) {
    return Status(StatusCode::kResourceExhausted, std::move(msg));
  }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& field() const { return field_; }

  // "InvalidArgument: port must be 0-65535 (field: port)"
  std::string to_string() const;

  // Prefixes the message with context, keeping code and field: "opening db: <message>".
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

// Holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).is_ok() && "Result built from an OK status has no value");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace atelier

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define ATELIER_RETURN_IF_ERROR(expr) \
  do {                                \
    ::atelier::Status _st = (expr);   \
    if (!_st.is_ok()) return _st;     \
  } while (0)

// `ATELIER_ASSIGN_OR_RETURN(auto job, find_job(db, id));` evaluates the Result once; when it is
// an error, returns its Status from the enclosing function, else moves its value into the
// declaration (which may also be an existing variable: `ATELIER_ASSIGN_OR_RETURN(x, f());`).
#define ATELIER_ASSIGN_OR_RETURN(lhs, expr) \
  ATELIER_ASSIGN_OR_RETURN_IMPL_(ATELIER_STATUS_CONCAT_(_result_, __LINE__), lhs, expr)
#define ATELIER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.is_ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
#define ATELIER_STATUS_CONCAT_(a, b) ATELIER_STATUS_CONCAT_INNER_(a, b)
#define ATELIER_STATUS_CONCAT_INNER_(a, b) a##b
