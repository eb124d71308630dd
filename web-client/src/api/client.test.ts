import { describe, expect, it, vi } from 'vitest';
import { ApiError, createApiClient, fetchReadiness, isApiError } from './client';
import type { InfoResponse } from './types';

const INFO: InfoResponse = {
  name: 'atelier',
  version: '0.1.0',
  api: 'v1',
  instance_id: '0123456789abcdef0123456789abcdef',
};

function jsonResponse(status: number, body: unknown, statusText = ''): Response {
  return new Response(JSON.stringify(body), {
    status,
    statusText,
    headers: { 'Content-Type': 'application/json' },
  });
}

/** A fetch mock returning `res` and recording its calls. */
function mockFetch(res: Response | (() => Response)) {
  return vi.fn<typeof fetch>(async () => (typeof res === 'function' ? res() : res));
}

/** A fetch that only settles when its signal aborts. */
function hangingFetch() {
  return vi.fn<typeof fetch>(
    (_input, init) =>
      new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      }),
  );
}

async function caught(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected the promise to reject');
}

describe('api client: success', () => {
  it('GETs /api/v1/info and returns the parsed body', async () => {
    const fetch = mockFetch(jsonResponse(200, INFO));
    const client = createApiClient({ fetch });

    await expect(client.info()).resolves.toEqual(INFO);

    expect(fetch).toHaveBeenCalledTimes(1);
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe('/api/v1/info');
    expect(init?.method).toBe('GET');
    expect(init?.body).toBeUndefined();
    expect((init?.headers as Record<string, string>)['Accept']).toBe('application/json');
  });

  it('joins base URL and path with exactly one slash', async () => {
    const fetch = mockFetch(() => jsonResponse(200, {}));
    const client = createApiClient({ baseUrl: 'http://127.0.0.1:8080/api/v1/', fetch });
    await client.get('projects');
    await client.get('/projects');
    expect(fetch.mock.calls.map(([url]) => url)).toEqual([
      'http://127.0.0.1:8080/api/v1/projects',
      'http://127.0.0.1:8080/api/v1/projects',
    ]);
  });

  it('POSTs a JSON body with a JSON content type', async () => {
    const fetch = mockFetch(jsonResponse(201, { id: '7' }));
    const client = createApiClient({ fetch });

    await expect(client.post('/projects', { name: 'Dawn' })).resolves.toEqual({ id: '7' });

    const [, init] = fetch.mock.calls[0]!;
    expect(init?.method).toBe('POST');
    expect(init?.body).toBe('{"name":"Dawn"}');
    expect((init?.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('returns undefined for 204 No Content', async () => {
    const client = createApiClient({ fetch: mockFetch(new Response(null, { status: 204 })) });
    await expect(client.request('/projects/7', { method: 'DELETE' })).resolves.toBeUndefined();
  });
});

describe('api client: error responses', () => {
  it('parses the JSON error body, field included', async () => {
    const fetch = mockFetch(
      jsonResponse(400, { error: { code: 'invalid_argument', message: 'name must not be empty', field: 'name' } }),
    );
    const err = await caught(createApiClient({ fetch }).post('/projects', { name: '' }));

    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_argument');
    expect(err.message).toBe('name must not be empty');
    expect(err.field).toBe('name');
    expect(err.name).toBe('ApiError');
    expect(err).toBeInstanceOf(Error);
    expect(isApiError(err)).toBe(true);
  });

  it('leaves field undefined when the error body has none', async () => {
    const fetch = mockFetch(jsonResponse(404, { error: { code: 'not_found', message: 'no such route' } }));
    const err = await caught(createApiClient({ fetch }).get('/nope'));

    expect(err).toMatchObject({ status: 404, code: 'not_found', message: 'no such route' });
    expect(err.field).toBeUndefined();
    expect('field' in err).toBe(false);
  });

  it('turns a non-JSON error body into code http_error with the status line', async () => {
    const fetch = mockFetch(
      new Response('<html><body>Bad Gateway</body></html>', {
        status: 502,
        statusText: 'Bad Gateway',
        headers: { 'Content-Type': 'text/html' },
      }),
    );
    const err = await caught(createApiClient({ fetch }).info());

    expect(err).toMatchObject({ status: 502, code: 'http_error', message: 'HTTP 502 Bad Gateway' });
    expect(err.field).toBeUndefined();
  });

  it('uses a short text/plain error body as the message', async () => {
    const fetch = mockFetch(
      new Response('upstream timed out\n', { status: 504, headers: { 'Content-Type': 'text/plain' } }),
    );
    const err = await caught(createApiClient({ fetch }).info());
    expect(err).toMatchObject({ status: 504, code: 'http_error', message: 'upstream timed out' });
  });

  it('treats JSON that is not the error shape as http_error', async () => {
    const fetch = mockFetch(jsonResponse(500, { oops: true }, 'Internal Server Error'));
    const err = await caught(createApiClient({ fetch }).info());
    expect(err).toMatchObject({ status: 500, code: 'http_error', message: 'HTTP 500 Internal Server Error' });
  });

  it('reports an unparsable 2xx body as invalid_response', async () => {
    const fetch = mockFetch(new Response('{"name":', { status: 200, headers: { 'Content-Type': 'application/json' } }));
    const err = await caught(createApiClient({ fetch }).info());
    expect(err).toMatchObject({ status: 200, code: 'invalid_response' });
  });
});

describe('api client: no response', () => {
  it('maps a network failure to code network with status 0', async () => {
    const cause = new TypeError('Failed to fetch');
    const failing = vi.fn<typeof fetch>(async () => {
      throw cause;
    });
    const err = await caught(createApiClient({ fetch: failing }).info());

    expect(err).toMatchObject({ status: 0, code: 'network', message: 'Cannot reach the server' });
    expect(err.cause).toBe(cause);
  });

  it('gives up after timeoutMs with code timeout', async () => {
    const err = await caught(createApiClient({ fetch: hangingFetch() }).info({ timeoutMs: 10 }));
    expect(err).toMatchObject({ status: 0, code: 'timeout' });
  });

  it('reports a caller abort as code aborted', async () => {
    const controller = new AbortController();
    const pending = createApiClient({ fetch: hangingFetch() }).info({ signal: controller.signal });
    controller.abort();
    const err = await caught(pending);
    expect(err).toMatchObject({ status: 0, code: 'aborted' });
  });

  it('uses the global fetch when none is injected', async () => {
    const stub = vi.fn<typeof globalThis.fetch>(async () => {
      throw new TypeError('fetch failed');
    });
    vi.stubGlobal('fetch', stub);
    const err = await caught(createApiClient().info());
    expect(err.code).toBe('network');
    expect(stub).toHaveBeenCalledWith('/api/v1/info', expect.anything());
  });
});

describe('fetchReadiness', () => {
  it('returns the body of a 200', async () => {
    const body = { status: 'ready', checks: { store: 'ok' } };
    const fetch = mockFetch(jsonResponse(200, body));
    await expect(fetchReadiness({ fetch })).resolves.toEqual(body);
    expect(fetch.mock.calls[0]![0]).toBe('/readyz');
  });

  it('returns the body of a 503 not_ready instead of throwing', async () => {
    const body = { status: 'not_ready', checks: { store: 'migrating' } };
    await expect(fetchReadiness({ fetch: mockFetch(jsonResponse(503, body)) })).resolves.toEqual(body);
  });

  it('throws the error of a 503 that carries the generic error body', async () => {
    const fetch = mockFetch(jsonResponse(503, { error: { code: 'overloaded', message: 'try later' } }));
    const err = await caught(fetchReadiness({ fetch }));
    expect(err).toMatchObject({ status: 503, code: 'overloaded', message: 'try later' });
  });

  it('rejects an answer that is not a readiness body', async () => {
    const err = await caught(fetchReadiness({ fetch: mockFetch(jsonResponse(200, { status: 'maybe' })) }));
    expect(err).toMatchObject({ status: 200, code: 'invalid_response' });
  });
});
