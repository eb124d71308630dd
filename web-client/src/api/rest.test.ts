// The REST calls that reshape what the server answers.
import { describe, expect, it, vi } from 'vitest';
import { createApiClient } from './client';
import { createRest } from './rest';

const json = (body: unknown) =>
  vi.fn<typeof fetch>(async () => new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } }));

describe('rest.catalog', () => {
  it('reads models and LoRA files from GET /models', async () => {
    const loras = [{ name: 'ink', family: 'sdxl', hash: null, available: true, reason: null }];
    const fetch = json({ models: [], loras });
    const rest = createRest(createApiClient({ fetch }));
    await expect(rest.catalog()).resolves.toEqual({ models: [], loras });
    expect(String(fetch.mock.calls[0]?.[0])).toMatch(/\/api\/v1\/models$/);
  });

  it('treats a server that lists no LoRAs as having none', async () => {
    const rest = createRest(createApiClient({ fetch: json({ models: [] }) }));
    await expect(rest.catalog()).resolves.toEqual({ models: [], loras: [] });
  });
});
