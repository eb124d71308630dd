// The upload route's request (POST /api/v1/projects/{id}/uploads), read into a typed
// UploadRequest before any pixel is decoded. Pure: no I/O, no store, no clock.
//
// Rules (proto/openapi.yaml, "uploadImage"):
//  - The body is either the raw file, with Content-Type image/png, image/jpeg or image/webp
//    (parameters such as charset ignored) and the optional query parameters `filename` and
//    `alpha`, or multipart/form-data with exactly one file part (any field name) and optionally
//    a text part named `alpha`. A file part's own Content-Type declares its format; when it says
//    application/octet-stream or nothing, the format is sniffed from its magic bytes
//    (image::sniff_format: a refused format is named with field "Content-Type", unrecognisable
//    bytes with field "file").
//  - Any other Content-Type, a missing one, or a part of another type (GIF, SVG, text) is
//    refused with field "Content-Type" (415, with the accepted list). Whether the bytes really
//    are the declared format is decode_upload's check (common/image_decode.h).
//  - An empty file, no file part or several are refused with field "file"; a malformed
//    multipart body with field "body"; an `alpha` other than flatten|keep with field "alpha".
//  - The file name (query `filename`, else the part's filename) is sanitised by
//    sanitize_file_name(); "" when none was given or nothing is left of it.
// Costs: one pass over the multipart body at most; the file is a view, never copied.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/image_decode.h"
#include "common/status.h"
#include "server/http/message.h"

namespace atelier::api {

// The longest file name kept, in bytes of UTF-8.
inline constexpr size_t kMaxUploadNameBytes = 120;
// How much larger than max_upload_bytes a request body may be: room for multipart framing.
inline constexpr uint64_t kMultipartOverheadBytes = 64 * 1024;

struct UploadRequest {
  image::ImageFormat format = image::ImageFormat::kPng;  // as declared (or sniffed)
  std::span<const uint8_t> file;  // the file's bytes: a view into the request's body
  std::string original_name;      // sanitised; "" when none
  image::AlphaMode alpha = image::AlphaMode::kFlatten;
};

// Reads `request` (its Content-Type, query and body) by the rules above. The result views
// request.body, so `request` must outlive it.
Result<UploadRequest> parse_upload_request(const http::Request& request);

// A file name fit to show and to offer for download: the base name only (after the last '/'
// or '\'), invalid UTF-8 replaced by U+FFFD, control characters and bidirectional overrides,
// isolates and marks removed, runs of whitespace turned into one space and trimmed, leading
// dots removed, and at most kMaxUploadNameBytes bytes (cut at a character boundary, keeping a
// short extension). "" when nothing is left.
std::string sanitize_file_name(std::string_view name);

}  // namespace atelier::api
