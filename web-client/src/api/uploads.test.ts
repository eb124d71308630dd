// uploadImage: what it sends, what it refuses before sending, and how failures come back.
import { describe, expect, it, vi } from 'vitest';
import { ApiError, createApiClient } from './client';
import { contentTypeFor, formatBytes, sniffType, uploadImage, uploadProblem } from './uploads';

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16]);
const WEBP = new TextEncoder().encode('RIFF\x10\x00\x00\x00WEBPVP8 ');
const GIF = new TextEncoder().encode('GIF89a');
const SVG = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>');

const image = { id: 31, project_id: 7, job_id: null, source: 'upload', original_name: 'cat.png', created_by: 3 };

function answer(status: number, body: unknown) {
  return vi.fn<typeof fetch>(async () => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }));
}

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected a failure');
}

describe('uploadImage', () => {
  it('POSTs the raw file with its type and the query parameters, and returns the image', async () => {
    const fetch = answer(201, { image });
    const file = new File([PNG], 'cat.png', { type: 'image/png' });
    await expect(uploadImage(7, file, { alpha: 'keep' }, createApiClient({ fetch }))).resolves.toEqual(image);
    const [url, init] = fetch.mock.calls[0]!;
    const u = new URL(String(url), 'http://localhost');
    expect(u.pathname).toBe('/api/v1/projects/7/uploads');
    expect(u.searchParams.get('filename')).toBe('cat.png');
    expect(u.searchParams.get('alpha')).toBe('keep');
    expect(init?.method).toBe('POST');
    expect(init?.body).toBe(file);
    expect((init?.headers as Record<string, string>)['Content-Type']).toBe('image/png');
  });

  it('sends the name it is given, and none for a nameless blob', async () => {
    const fetch = answer(201, { image });
    const client = createApiClient({ fetch });
    await uploadImage(7, new Blob([JPEG], { type: 'image/jpeg' }), {}, client);
    await uploadImage(7, new File([WEBP], 'a.webp', { type: 'image/webp' }), { filename: 'sketch 1.webp' }, client);
    const urls = fetch.mock.calls.map(([u]) => new URL(String(u), 'http://localhost'));
    expect(urls[0]?.search).toBe('');
    expect(urls[1]?.searchParams.get('filename')).toBe('sketch 1.webp');
    expect((fetch.mock.calls[0]?.[1]?.headers as Record<string, string>)['Content-Type']).toBe('image/jpeg');
    expect((fetch.mock.calls[1]?.[1]?.headers as Record<string, string>)['Content-Type']).toBe('image/webp');
  });

  it('refuses other types before sending anything, naming Content-Type', async () => {
    const fetch = answer(201, { image });
    const client = createApiClient({ fetch });
    for (const file of [
      new File([GIF], 'a.gif', { type: 'image/gif' }),
      new File([SVG], 'a.svg', { type: 'image/svg+xml' }),
      new File([SVG], 'a.svg', { type: '' }),
      new File([GIF], 'a.bin', { type: 'application/octet-stream' }),
      new File(['hello'], 'a.txt', { type: 'text/plain' }),
    ]) {
      const err = await failure(uploadImage(7, file, {}, client));
      expect(err.status).toBe(415);
      expect(err.field).toBe('Content-Type');
      expect(err.message).toMatch(/Only PNG, JPEG and WebP/);
    }
    expect(fetch).not.toHaveBeenCalled();
  });

  it('types an untyped file from its first bytes', async () => {
    expect(await contentTypeFor(new Blob([PNG]))).toBe('image/png');
    expect(await contentTypeFor(new Blob([JPEG], { type: 'application/octet-stream' }))).toBe('image/jpeg');
    expect(await contentTypeFor(new Blob([WEBP]))).toBe('image/webp');
    expect(await contentTypeFor(new Blob([GIF], { type: 'image/jpg' }))).toBe('image/jpeg'); // the declared type rules
    expect(sniffType(GIF)).toBeNull();
    expect(sniffType(new Uint8Array([0x89, 0x50]))).toBeNull(); // too short
  });

  it('throws the server’s error with its status, code, field and message', async () => {
    for (const [status, code, field, message] of [
      [415, 'unsupported_media_type', 'Content-Type', 'the body is a GIF image; send PNG, JPEG or WebP'],
      [400, 'invalid_argument', 'file', 'image is 9000x9000: each side at most 8192'],
      [429, 'rate_limited', 'file', 'more than max_uploads_per_user_per_hour (200) uploads in the last hour'],
      [413, 'body_too_large', undefined, 'request body of 30000000 bytes exceeds the limit of 20065536'],
      [403, 'forbidden', undefined, 'viewers cannot upload'],
    ] as const) {
      const fetch = answer(status, { error: { code, message, ...(field ? { field } : {}) } });
      const err = await failure(uploadImage(7, new File([PNG], 'a.png', { type: 'image/png' }), {}, createApiClient({ fetch })));
      expect({ status: err.status, code: err.code, field: err.field, message: err.message }).toEqual({ status, code, field, message });
    }
  });

  it('treats a 201 without an image as an invalid answer', async () => {
    const err = await failure(uploadImage(7, new Blob([PNG], { type: 'image/png' }), {}, createApiClient({ fetch: answer(201, {}) })));
    expect(err.code).toBe('invalid_response');
  });
});

describe('uploadProblem', () => {
  const err = (status: number, message: string) => new ApiError({ status, code: 'x', message });

  it('tells the limit of a 413 in megabytes', () => {
    expect(uploadProblem(err(413, 'request body of 30000000 bytes exceeds the limit of 20065536'))).toBe('too large: max 20 MB');
    expect(uploadProblem(err(413, 'request body of 3 bytes exceeds the limit of 2500000'))).toBe('too large: max 2.5 MB');
    expect(uploadProblem(err(413, 'request body is larger than the server accepts'))).toBe(
      'too large: request body is larger than the server accepts',
    );
  });

  it('passes the server’s words on for 415, 400 and 429, and leaves the rest to the general wording', () => {
    expect(uploadProblem(err(400, 'image is larger than max_upload_pixels'))).toBe('image is larger than max_upload_pixels');
    expect(uploadProblem(err(415, 'SVG is not accepted'))).toBe('SVG is not accepted');
    expect(uploadProblem(err(429, 'max_uploads_per_user_per_hour'))).toBe('max_uploads_per_user_per_hour');
    expect(uploadProblem(err(503, 'busy'))).toBeNull();
    expect(uploadProblem(new Error('x'))).toBeNull();
  });

  it('formats sizes', () => {
    expect(formatBytes(20_000_000)).toBe('20 MB');
    expect(formatBytes(1_050_000)).toBe('1 MB');
    expect(formatBytes(512_000)).toBe('512 kB');
  });
});
