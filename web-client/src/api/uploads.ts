// Uploading an image into a project: `POST /api/v1/projects/{id}/uploads` with the raw file as
// the body.
//
// Rules: only PNG, JPEG and WebP are sent; anything else is refused here, before a byte goes out,
// with the error the server would give (415, field `Content-Type`). A blob that says no type (or
// application/octet-stream, as some systems label files) is typed from its first bytes. Failures
// are thrown as ApiError (status, code, field, message) like every REST helper's.
// Costs: reads at most 16 bytes of the blob itself (to type an untyped one); the body is streamed
// by fetch.
import { ApiError, api, isApiError, type ApiClient } from './client';
import type { Image } from './models';

/** The image types the server takes. */
export const UPLOAD_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type UploadType = (typeof UPLOAD_TYPES)[number];

/** For `<input type=file accept=…>`. */
export const UPLOAD_ACCEPT = UPLOAD_TYPES.join(',');

export interface UploadOptions {
  /** The original file name, kept (sanitised) with the image; default: the File's own name. */
  filename?: string;
  /** `flatten` (default) puts transparent parts over white; `keep` keeps the alpha (a mask). */
  alpha?: 'flatten' | 'keep';
  signal?: AbortSignal;
}

// A large file on a slow link takes a while; the server bounds the body's pace itself.
const UPLOAD_TIMEOUT_MS = 300_000;
const ALIASES: Record<string, UploadType> = { 'image/jpg': 'image/jpeg', 'image/pjpeg': 'image/jpeg' };

/** The upload type of a declared MIME type (parameters and case ignored), or null. */
export function uploadTypeOf(mime: string): UploadType | null {
  const t = (mime.split(';')[0] ?? '').trim().toLowerCase();
  if ((UPLOAD_TYPES as readonly string[]).includes(t)) return t as UploadType;
  return ALIASES[t] ?? null;
}

/** The type the first bytes of a file show (PNG, JPEG or WebP signature), or null. */
export function sniffType(head: Uint8Array): UploadType | null {
  const at = (i: number, bytes: number[]) => bytes.every((b, k) => head[i + k] === b);
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (at(0, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return 'image/webp';
  return null;
}

function refused(what: string): ApiError {
  return new ApiError({
    status: 415,
    code: 'unsupported_media_type',
    field: 'Content-Type',
    message: `Only PNG, JPEG and WebP images can be uploaded${what ? ` (this is ${what})` : ''}.`,
  });
}

/** The Content-Type to send `file` with; throws the 415 ApiError for anything not uploadable. */
export async function contentTypeFor(file: Blob): Promise<UploadType> {
  const declared = file.type.trim().toLowerCase();
  const known = uploadTypeOf(declared);
  if (known) return known;
  if (declared !== '' && declared !== 'application/octet-stream') throw refused(declared);
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const sniffed = sniffType(head);
  if (!sniffed) throw refused('not an image this server reads');
  return sniffed;
}

function nameOf(file: Blob): string | undefined {
  return typeof File !== 'undefined' && file instanceof File && file.name !== '' ? file.name : undefined;
}

/** Uploads `file` into project `projectId`; resolves to the stored image (the 201's `image`). */
export async function uploadImage(
  projectId: number,
  file: Blob,
  opts: UploadOptions = {},
  client: ApiClient = api,
): Promise<Image> {
  const contentType = await contentTypeFor(file);
  const query = new URLSearchParams();
  const filename = opts.filename ?? nameOf(file);
  if (filename) query.set('filename', filename);
  if (opts.alpha) query.set('alpha', opts.alpha);
  const q = query.toString();
  const body = await client.request<{ image: Image }>(`/projects/${projectId}/uploads${q ? `?${q}` : ''}`, {
    method: 'POST',
    raw: { body: file, contentType },
    timeoutMs: UPLOAD_TIMEOUT_MS,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (!body || typeof body.image !== 'object' || body.image === null) {
    throw new ApiError({ status: 201, code: 'invalid_response', message: 'The server did not return the uploaded image.' });
  }
  return body.image;
}

/** "20 MB" for 20_000_000 (decimal megabytes, rounded down to one decimal). */
export function formatBytes(n: number): string {
  if (n < 1_000_000) return `${Math.max(1, Math.floor(n / 1000))} kB`;
  const mb = Math.floor(n / 100_000) / 10;
  return `${Number.isInteger(mb) ? mb.toFixed(0) : mb.toFixed(1)} MB`;
}

/**
 * What to tell someone whose upload failed, for the answers specific to uploads (413 with the
 * limit, and the server's own words for 415, 400 and 429, which name the type, the limit or the
 * file's fault); null for anything else (use the general wording).
 */
export function uploadProblem(err: unknown): string | null {
  if (!isApiError(err)) return null;
  if (err.status === 413) {
    // The server says "... exceeds the limit of N": the largest body the route takes.
    const limit = /limit of (\d+)/.exec(err.message)?.[1];
    return limit ? `too large: max ${formatBytes(Number(limit))}` : `too large: ${err.message}`;
  }
  if (err.status === 415 || err.status === 400 || err.status === 429) return err.message;
  return null;
}
