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

describe('paged lists', () => {
  const member = (id: number) => ({ user_id: id, username: `u${id}`, role: 'viewer', added_at: '2025-05-04T14:00:00Z' });
  const project = (id: number) => ({
    id,
    name: `p${id}`,
    description: '',
    created_by: 1,
    created_at: '2025-05-04T14:00:00Z',
    updated_at: '2025-05-04T14:00:00Z',
    role: 'owner',
  });

  it('reads one page of projects and passes the cursor on', async () => {
    const fetch = json({ projects: [project(9), project(8)], next_before: 8 });
    const rest = createRest(createApiClient({ fetch }));
    await expect(rest.projects()).resolves.toEqual({ items: [project(9), project(8)], nextBefore: 8 });
    expect(String(fetch.mock.calls[0]?.[0])).toMatch(/\/api\/v1\/projects$/);
    await rest.projects(8);
    expect(String(fetch.mock.calls[1]?.[0])).toMatch(/\/api\/v1\/projects\?before=8$/);
  });

  it('treats an answer without a cursor as the last page', async () => {
    const rest = createRest(createApiClient({ fetch: json({ projects: [project(1)] }) }));
    await expect(rest.projects()).resolves.toEqual({ items: [project(1)], nextBefore: null });
  });

  it('follows the members cursor to the end', async () => {
    const pages: Record<string, unknown> = {
      '': { members: [member(5), member(4)], next_before: 4 },
      '4': { members: [member(3), member(2)], next_before: 2 },
      '2': { members: [], next_before: null },
    };
    const fetchPage = vi.fn<typeof globalThis.fetch>(async (input) => {
      const url = new URL(String(input), 'http://localhost');
      expect(url.pathname).toBe('/api/v1/projects/7/members');
      expect(url.searchParams.get('limit')).toBe('200');
      const body = pages[url.searchParams.get('before') ?? ''];
      return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
    });
    const rest = createRest(createApiClient({ fetch: fetchPage }));
    const all = await rest.members(7);
    expect(all.map((m) => m.user_id)).toEqual([5, 4, 3, 2]);
    expect(fetchPage).toHaveBeenCalledTimes(3);
  });

  it('stops when a cursor does not move on', async () => {
    const fetch = json({ members: [member(5)], next_before: 5 });
    const rest = createRest(createApiClient({ fetch }));
    await expect(rest.members(7)).resolves.toHaveLength(2);
    expect(fetch).toHaveBeenCalledTimes(2);
  });
});
