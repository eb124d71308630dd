// What the page knows about the server it was loaded from: readiness and version.
// Signals, so any component reading them re-renders when they change.

import { computed, signal } from '@preact/signals';
import { api, fetchReadiness, isApiError, type ApiClient } from '../api/client';
import type { InfoResponse, ReadinessResponse } from '../api/types';

export type ServerState = 'checking' | 'ready' | 'starting' | 'shutting_down' | 'unavailable';

export const serverState = signal<ServerState>('checking');
export const serverInfo = signal<InfoResponse | null>(null);
/** Checks that are not "ok", as [name, reason]. */
export const pendingChecks = signal<ReadonlyArray<readonly [string, string]>>([]);

export const serverStateLabel = computed(() => STATE_LABELS[serverState.value]);

export const STATE_LABELS: Readonly<Record<ServerState, string>> = {
  checking: 'Checking server…',
  ready: 'Server ready',
  starting: 'Server starting…',
  shutting_down: 'Server shutting down',
  unavailable: 'Server unavailable',
};

export function stateFromReadiness(r: ReadinessResponse): ServerState {
  switch (r.status) {
    case 'ready':
      return 'ready';
    case 'not_ready':
      return 'starting';
    case 'shutting_down':
      return 'shutting_down';
  }
}

export interface MonitorOptions {
  client?: ApiClient;
  readiness?: typeof fetchReadiness;
  /** Poll interval while ready (ms). */
  readyIntervalMs?: number;
  /** Poll interval while not ready or unreachable (ms). */
  retryIntervalMs?: number;
}

/** Polls /readyz (and /api/v1/info until known). Returns a function that stops it. */
export function startServerMonitor(options: MonitorOptions = {}): () => void {
  const client = options.client ?? api;
  const readiness = options.readiness ?? fetchReadiness;
  const readyInterval = options.readyIntervalMs ?? 15_000;
  const retryInterval = options.retryIntervalMs ?? 2_000;

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight: AbortController | undefined;

  const loadInfo = async (signal: AbortSignal): Promise<void> => {
    try {
      serverInfo.value = await client.info({ signal, timeoutMs: 5_000 });
    } catch {
      // Shown as "unknown"; retried on the next poll.
    }
  };

  const check = async (): Promise<void> => {
    if (stopped) return;
    clearTimeout(timer);
    inflight?.abort();
    const controller = new AbortController();
    inflight = controller;
    const infoDone = serverInfo.value ? Promise.resolve() : loadInfo(controller.signal);
    try {
      const r = await readiness({ signal: controller.signal, timeoutMs: 5_000 });
      serverState.value = stateFromReadiness(r);
      pendingChecks.value = Object.entries(r.checks).filter(([, v]) => v !== 'ok');
    } catch (err) {
      if (isApiError(err) && err.code === 'aborted') return;
      serverState.value = 'unavailable';
      pendingChecks.value = [];
    }
    await infoDone;
    if (stopped || inflight !== controller) return;
    const delay = serverState.value === 'ready' ? readyInterval : retryInterval;
    timer = setTimeout(() => void check(), delay);
  };

  const onVisible = (): void => {
    if (document.visibilityState === 'visible') void check();
  };
  const hasDocument = typeof document !== 'undefined';
  if (hasDocument) document.addEventListener('visibilitychange', onVisible);
  void check();

  return () => {
    stopped = true;
    clearTimeout(timer);
    inflight?.abort();
    if (hasDocument) document.removeEventListener('visibilitychange', onVisible);
  };
}
