// Response shapes of the Atelier server, as described in proto/openapi.yaml.
// Keep the two in step: a change to a schema there needs the matching change here.

/** Body of every error response: `{"error":{"code":"...","message":"...","field":"..."}}`. */
export interface ErrorBody {
  error: {
    /** Stable machine-readable code, e.g. `not_found`, `invalid_argument`. */
    code: string;
    /** Human-readable explanation; may change between versions. */
    message: string;
    /** The request field the error refers to, when there is one. */
    field?: string;
  };
}

/** `GET /healthz`: liveness only. */
export interface HealthResponse {
  status: 'ok';
}

export type ReadinessStatus = 'ready' | 'not_ready' | 'shutting_down';

/**
 * `GET /readyz`: 200 when ready, 503 otherwise (same shape). Each check maps its name to
 * `"ok"` or a short reason it is not ready.
 */
export interface ReadinessResponse {
  status: ReadinessStatus;
  checks: Record<string, string>;
}

/** `GET /api/v1/info`. */
export interface InfoResponse {
  /** Always `"atelier"`. */
  name: string;
  /** Server version, e.g. `"0.1.0"`. */
  version: string;
  /** API generation, `"v1"`. */
  api: string;
  /** 32 hex digits, new on every server start. */
  instance_id: string;
}
