// Uploads over REST: `POST /api/v1/projects/{id}/uploads` (editor or owner, with a
// submit-scoped credential; viewers 403, non-members 404, anonymous 401).
//
// Rules: the body (raw image or multipart/form-data, server/api/upload_request.h) is at most
// max_upload_bytes (+ kMultipartOverheadBytes of framing), refused with 413 from its
// Content-Length before it is read, and the file itself again with 413 naming "file". The file
// is decoded by decode_upload (format checked against the declared one, size limits checked
// from the header before any pixel is decoded, EXIF orientation applied, alpha flattened unless
// `alpha=keep`), re-encoded as a PNG without any metadata, stored in the ImageStore, and
// committed as an images row (source "upload", no job, no parent) together with the durable
// `image.uploaded` event, in one transaction that also re-checks the caller's role and
// max_uploads_per_user_per_hour (429 naming "file", with Retry-After). 201 {"image": Image}.
// A refusal leaves no file and no row: a stored file whose row was not committed is removed
// at once unless another row uses the same bytes (ImageStore::discard); a crash in between
// leaves a file the start-up sweep removes.
//
// Costs: decoding (up to max_upload_pixels) and encoding run on ctx.image_pool (a full queue
// answers 503 with Retry-After), the commit on the store's writer thread; the I/O thread only
// parses the request and reads the caller's role and upload count.
// Threads: the handler runs on an I/O thread; the rest on an image_pool thread, which waits for
// the write transaction (as job completions do).
#pragma once

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/router.h"

namespace atelier::api {

// `ctx` must outlive the router.
Status register_upload_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
