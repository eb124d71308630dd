#include "server/api/errors.h"

#include <string>
#include <utility>

#include "common/logging.h"

namespace atelier::api {

Status unsupported_media_type(std::string message) {
  return Status::invalid_argument(std::move(message), std::string(kContentTypeField));
}

HttpError http_error_for(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      if (status.field() == kContentTypeField) return {415, "unsupported_media_type"};
      return {400, "invalid_argument"};
    case StatusCode::kNotFound:
      return {404, "not_found"};
    case StatusCode::kAlreadyExists:
      return {409, "conflict"};
    case StatusCode::kPermissionDenied:
      return {403, "forbidden"};
    case StatusCode::kUnauthenticated:
      return {401, "unauthenticated"};
    case StatusCode::kFailedPrecondition:
      return {409, "failed_precondition"};
    case StatusCode::kResourceExhausted:
      return {429, "rate_limited"};
    case StatusCode::kUnavailable:
      return {503, "unavailable"};
    case StatusCode::kGone:
      return {410, "gone"};
    case StatusCode::kCancelled:
      return {409, "cancelled"};
    case StatusCode::kUnprocessable:
      return {422, "unprocessable"};
    case StatusCode::kOk:
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      break;
  }
  return {500, "internal"};
}

http::Response error_response(const Status& status) {
  HttpError mapped = http_error_for(status);
  if (mapped.http_status == 500) {
    // The client gets nothing it could learn internals from; the operator gets everything.
    std::string detail = status.to_string();
    log::write(log::Level::kError, "request failed with an internal error",
               {{"status", std::string_view(detail)}});
    return http::Response::error(500, mapped.code, "internal server error");
  }
  return http::Response::error(mapped.http_status, mapped.code, status.message(), status.field());
}

}  // namespace atelier::api
