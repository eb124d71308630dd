// A small typed fetch wrapper for the Atelier HTTP API.
//
// Every failure is thrown as an ApiError:
//  - the server's error body `{"error":{"code","message","field"?}}` keeps its code/message/field;
//  - any other non-2xx answer gets code `http_error` (message from a text body or the status);
//  - a 2xx answer that is not the JSON we asked for gets code `invalid_response`;
//  - no answer at all gets status 0 and code `network`, `timeout` or `aborted`.

import type { ErrorBody, InfoResponse, ReadinessResponse } from './types';

/** Codes the client itself produces (the server's codes pass through unchanged). */
export type ClientErrorCode = 'network' | 'timeout' | 'aborted' | 'http_error' | 'invalid_response';

export interface ApiErrorInit {
  status: number;
  code: string;
  message: string;
  field?: string | undefined;
}

export class ApiError extends Error {
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number;
  readonly code: string;
  declare readonly field?: string;

  constructor(init: ApiErrorInit, options?: { cause?: unknown }) {
    super(init.message, options);
    this.name = 'ApiError';
    this.status = init.status;
    this.code = init.code;
    if (init.field !== undefined) this.field = init.field;
  }
}

export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  method?: HttpMethod;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is with this Content-Type, instead of a JSON `body` (e.g. an image upload). */
  raw?: { body: Blob; contentType: string };
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Give up after this many milliseconds (code `timeout`). Default 15000; 0 = never. */
  timeoutMs?: number;
  /** HTTP statuses besides 2xx whose JSON body is a normal result (e.g. 503 for /readyz). */
  acceptStatus?: readonly number[];
}

export interface ApiClientOptions {
  /** Prefix for API paths; default `/api/v1` on the page's own origin. */
  baseUrl?: string;
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const MAX_TEXT_MESSAGE = 200;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Narrows a parsed JSON value to the server's error shape. */
export function isErrorBody(value: unknown): value is ErrorBody {
  if (!isRecord(value) || !isRecord(value.error)) return false;
  const { code, message, field } = value.error;
  return (
    typeof code === 'string' &&
    typeof message === 'string' &&
    (field === undefined || typeof field === 'string')
  );
}

function statusLine(res: Response): string {
  return `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
}

async function errorFromResponse(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // Body unreadable (connection dropped mid-body): fall back to the status line.
  }
  const contentType = res.headers.get('content-type') ?? '';
  if (text) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (isErrorBody(parsed)) {
        const { code, message, field } = parsed.error;
        return new ApiError({ status: res.status, code, message, field });
      }
    } catch {
      // Not JSON: handled below.
    }
  }
  const trimmed = text.trim();
  const useText = trimmed !== '' && contentType.startsWith('text/plain');
  return new ApiError({
    status: res.status,
    code: 'http_error',
    message: useText ? trimmed.slice(0, MAX_TEXT_MESSAGE) : statusLine(res),
  });
}

async function jsonFromResponse<T>(res: Response): Promise<T> {
  if (res.status === 204 || res.status === 205) return undefined as T;
  const text = await res.text();
  if (text === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new ApiError(
      { status: res.status, code: 'invalid_response', message: `Invalid JSON in response (${statusLine(res)})` },
      { cause },
    );
  }
}

export interface JsonResult<T> {
  status: number;
  body: T;
}

const globalFetch: typeof fetch = (input, init) => globalThis.fetch(input, init);

/**
 * Fetches `url` and returns the status and parsed JSON body, or throws an ApiError.
 * Exported for the few endpoints outside `/api/v1` (`/readyz`, `/healthz`).
 */
export async function requestJson<T>(
  url: string,
  options: RequestOptions = {},
  fetchImpl: typeof fetch = globalFetch,
): Promise<JsonResult<T>> {
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  const init: RequestInit = { method: options.method ?? 'GET', headers, credentials: 'same-origin' };
  if (options.raw !== undefined) {
    headers['Content-Type'] = options.raw.contentType;
    init.body = options.raw.body;
  } else if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }

  const controller = new AbortController();
  init.signal = controller.signal;
  let timedOut = false;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timer =
    timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs)
      : undefined;
  const outer = options.signal;
  const onOuterAbort = (): void => controller.abort();
  if (outer) {
    if (outer.aborted) controller.abort();
    else outer.addEventListener('abort', onOuterAbort, { once: true });
  }

  const failure = (cause: unknown): ApiError => {
    if (timedOut) {
      return new ApiError({ status: 0, code: 'timeout', message: `No answer from the server within ${timeoutMs} ms` }, { cause });
    }
    if (controller.signal.aborted) {
      return new ApiError({ status: 0, code: 'aborted', message: 'Request cancelled' }, { cause });
    }
    return new ApiError({ status: 0, code: 'network', message: 'Cannot reach the server' }, { cause });
  };

  try {
    let res: Response;
    try {
      res = await fetchImpl(url, init);
    } catch (cause) {
      throw failure(cause);
    }
    if (!res.ok && !(options.acceptStatus ?? []).includes(res.status)) {
      throw await errorFromResponse(res);
    }
    try {
      return { status: res.status, body: await jsonFromResponse<T>(res) };
    } catch (cause) {
      if (cause instanceof ApiError) throw cause;
      throw failure(cause); // body read failed (connection lost, timeout while reading)
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

export interface ApiClient {
  request<T>(path: string, options?: RequestOptions): Promise<T>;
  get<T>(path: string, options?: Omit<RequestOptions, 'method' | 'body'>): Promise<T>;
  post<T>(path: string, body?: unknown, options?: Omit<RequestOptions, 'method' | 'body'>): Promise<T>;
  /** `GET /api/v1/info`. */
  info(options?: Pick<RequestOptions, 'signal' | 'timeoutMs'>): Promise<InfoResponse>;
}

/** Creates a client for `/api/v1`; paths are relative to it (`client.get('/info')`). */
export function createApiClient(options: ApiClientOptions = {}): ApiClient {
  const baseUrl = (options.baseUrl ?? '/api/v1').replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? globalFetch;
  const url = (path: string): string => `${baseUrl}${path.startsWith('/') ? '' : '/'}${path}`;
  const send = async <T>(path: string, opts: RequestOptions): Promise<T> =>
    (await requestJson<T>(url(path), opts, fetchImpl)).body;

  const client: ApiClient = {
    request: (path, opts) => send(path, opts ?? {}),
    get: (path, opts) => send(path, { ...opts, method: 'GET' }),
    post: (path, body, opts) => send(path, { ...opts, method: 'POST', body }),
    info: (opts) => client.get<InfoResponse>('/info', opts),
  };
  return client;
}

/** The page's default client. */
export const api: ApiClient = createApiClient();

const READINESS_STATUSES: readonly string[] = ['ready', 'not_ready', 'shutting_down'];

function isReadiness(value: unknown): value is ReadinessResponse {
  return (
    isRecord(value) &&
    typeof value.status === 'string' &&
    READINESS_STATUSES.includes(value.status) &&
    isRecord(value.checks) &&
    Object.values(value.checks).every((v) => typeof v === 'string')
  );
}

/**
 * `GET /readyz`. 200 and 503 both carry a readiness body; anything else (including a 503
 * with the generic error body) throws ApiError. `root` is the server's origin (default: the
 * page's own).
 */
export async function fetchReadiness(
  options: Pick<RequestOptions, 'signal' | 'timeoutMs'> & { root?: string; fetch?: typeof fetch } = {},
): Promise<ReadinessResponse> {
  const { root = '', fetch: fetchImpl, ...rest } = options;
  const { status, body } = await requestJson<unknown>(
    `${root.replace(/\/+$/, '')}/readyz`,
    { ...rest, acceptStatus: [503] },
    fetchImpl ?? globalFetch,
  );
  if (isReadiness(body)) return body;
  if (isErrorBody(body)) {
    const { code, message, field } = body.error;
    throw new ApiError({ status, code, message, field });
  }
  throw new ApiError({ status, code: 'invalid_response', message: 'Unexpected answer from /readyz' });
}
