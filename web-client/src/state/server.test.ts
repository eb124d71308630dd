import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApiClient } from '../api/client';
import type { ReadinessResponse } from '../api/types';
import { serverInfo, serverState, serverStateLabel, startServerMonitor, stateFromReadiness } from './server';

describe('stateFromReadiness', () => {
  it('maps every readiness status to a page state', () => {
    expect(stateFromReadiness({ status: 'ready', checks: {} })).toBe('ready');
    expect(stateFromReadiness({ status: 'not_ready', checks: {} })).toBe('starting');
    expect(stateFromReadiness({ status: 'shutting_down', checks: {} })).toBe('shutting_down');
  });
});

describe('startServerMonitor', () => {
  let stop: (() => void) | undefined;
  afterEach(() => {
    stop?.();
    serverState.value = 'checking';
    serverInfo.value = null;
  });

  it('shows "Server ready" and the version once the server answers', async () => {
    const info = { name: 'atelier', version: '0.1.0', api: 'v1', instance_id: 'ab'.repeat(16) };
    const client = createApiClient({
      fetch: async () => new Response(JSON.stringify(info), { status: 200 }),
    });
    const readiness = vi.fn(async (): Promise<ReadinessResponse> => ({ status: 'ready', checks: { store: 'ok' } }));

    stop = startServerMonitor({ client, readiness });
    await vi.waitFor(() => expect(serverState.value).toBe('ready'));
    await vi.waitFor(() => expect(serverInfo.value?.version).toBe('0.1.0'));
    expect(serverStateLabel.value).toBe('Server ready');
  });

  it('shows "Server unavailable" when the server cannot be reached', async () => {
    const client = createApiClient({
      fetch: async () => {
        throw new TypeError('fetch failed');
      },
    });
    const readiness = (): Promise<ReadinessResponse> => client.get('/readyz');

    stop = startServerMonitor({ client, readiness, retryIntervalMs: 60_000 });
    await vi.waitFor(() => expect(serverState.value).toBe('unavailable'));
    expect(serverStateLabel.value).toBe('Server unavailable');
    expect(serverInfo.value).toBeNull();
  });
});
