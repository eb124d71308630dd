// error_response: the one way a handler turns a failed Status into an HTTP answer.
//
// Every error, on every path, has the shape
//   {"error":{"code":"...","message":"...","field":"..."}}   ("field" only when the Status has one)
//
//   StatusCode                               HTTP  code
//   kInvalidArgument                         400   invalid_argument
//   kInvalidArgument, field "Content-Type"   415   unsupported_media_type   (see below)
//   kNotFound                                404   not_found
//   kAlreadyExists                           409   conflict
//   kPermissionDenied                        403   forbidden
//   kUnauthenticated                         401   unauthenticated
//   kFailedPrecondition                      409   failed_precondition
//   kResourceExhausted                       429   rate_limited
//   kUnavailable                             503   unavailable
//   anything else (IoError, Corruption,      500   internal
//   Internal, and OK passed by mistake)
//
// For 4xx answers the Status message and field go to the client as they are, so messages meant
// for this path must be written for clients (and never quote secrets). A 500 carries a fixed,
// generic message and no field, so store errors, SQL and paths never leak; the full Status is
// logged at error level instead, so the detail is not lost.
//
// Unsupported media type: common/status.h has no code for it, and a marker hidden in the message
// would be fragile, so a Status means "unsupported media type" exactly when its code is
// kInvalidArgument and its field is "Content-Type" (kContentTypeField). That header is the only
// input such an error can be about, so the pairing is unambiguous. Build one with
// unsupported_media_type().
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "server/http/message.h"

namespace atelier::api {

inline constexpr std::string_view kContentTypeField = "Content-Type";

// A Status that error_response answers with 415 "unsupported_media_type".
Status unsupported_media_type(std::string message);

// The HTTP status and error code `status` maps to (table above). For logs, metrics and other
// transports (e.g. error frames) that need the same vocabulary without a Response.
struct HttpError {
  int http_status = 500;
  std::string_view code = "internal";
};
HttpError http_error_for(const Status& status);

// The JSON error response for `status` (table above). Never fails; an OK status is a caller bug
// and gets the generic 500.
http::Response error_response(const Status& status);

}  // namespace atelier::api
