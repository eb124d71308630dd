// Response shapes of the server's health and info endpoints, generated from proto/openapi.yaml
// (see models.ts for the rest).
import type { components } from './schema';

type Schemas = components['schemas'];

/** Body of every error response: `{"error":{"code":"...","message":"...","field":"..."}}`. */
export type ErrorBody = Schemas['Error'];
/** `GET /healthz`: liveness only. */
export type HealthResponse = Schemas['Health'];
/** `GET /readyz`: 200 when ready, 503 otherwise (same shape). */
export type ReadinessResponse = Schemas['Readiness'];
export type ReadinessStatus = ReadinessResponse['status'];
/** `GET /api/v1/info`. */
export type InfoResponse = Schemas['Info'];
