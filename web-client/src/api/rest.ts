// The REST calls the web client makes, typed with the shapes generated from proto/openapi.yaml.
import { api, type ApiClient } from './client';
import type {
  ImageDetail,
  Invite,
  Job,
  JobSubmit,
  Me,
  Member,
  ModelCatalog,
  Project,
  ReactionChange,
  Role,
  Session,
} from './models';

/** One page of a paged list: its items, and the cursor of the next page (null: this was the last). */
export interface Page<T> {
  items: T[];
  nextBefore: number | null;
}

/** The most a page of a paged list holds (the server's `limit` cap). */
export const MAX_PAGE = 200;

export interface Rest {
  register(username: string, password: string, invite?: string): Promise<Session>;
  login(username: string, password: string): Promise<Session>;
  logout(): Promise<void>;
  me(): Promise<Me>;
  /** One page of the caller's projects, newest first; `before` is the previous page's `nextBefore`. */
  projects(before?: number | null): Promise<Page<Project>>;
  createProject(name: string): Promise<Project>;
  project(id: number): Promise<Project>;
  renameProject(id: number, name: string): Promise<Project>;
  /** Every member of the project (all pages, followed). */
  members(project: number): Promise<Member[]>;
  setRole(project: number, user: number, role: Role): Promise<Member>;
  removeMember(project: number, user: number): Promise<void>;
  createInvite(project: number, role: Role, maxUses?: number): Promise<Invite>;
  acceptInvite(code: string): Promise<Project>;
  /** The models and LoRA files (`GET /models`). */
  catalog(): Promise<ModelCatalog>;
  submitJob(project: number, job: JobSubmit): Promise<Job>;
  cancelJob(job: number): Promise<Job>;
  image(id: number): Promise<ImageDetail>;
  setReaction(image: number, emoji: string, on: boolean): Promise<ReactionChange>;
}

/** The page of a `{<key>: [...], next_before}` answer; an older server without paging sends no cursor. */
function pageOf<T>(body: Record<string, unknown>, key: string): Page<T> {
  const items = (body[key] ?? []) as T[];
  const next = body.next_before;
  return { items, nextBefore: typeof next === 'number' ? next : null };
}

function pagePath(path: string, before: number | null | undefined, limit?: number): string {
  const query = new URLSearchParams();
  if (limit !== undefined) query.set('limit', String(limit));
  if (before !== undefined && before !== null) query.set('before', String(before));
  const q = query.toString();
  return q ? `${path}?${q}` : path;
}

export function createRest(client: ApiClient = api): Rest {
  const enc = encodeURIComponent;
  return {
    register: (username, password, invite) =>
      client.post('/auth/register', { username, password, ...(invite ? { invite } : {}) }),
    login: (username, password) => client.post('/auth/login', { username, password }),
    logout: async () => {
      await client.post('/auth/logout');
    },
    me: () => client.get('/me'),
    projects: async (before) => pageOf<Project>(await client.get(pagePath('/projects', before)), 'projects'),
    createProject: (name) => client.post('/projects', { name }),
    project: (id) => client.get(`/projects/${id}`),
    renameProject: (id, name) => client.request(`/projects/${id}`, { method: 'PATCH', body: { name } }),
    members: async (project) => {
      // The room needs everyone (roles, names), so every page is read, the largest there are.
      const all: Member[] = [];
      let before: number | null = null;
      for (;;) {
        const page: Page<Member> = pageOf<Member>(
          await client.get(pagePath(`/projects/${project}/members`, before, MAX_PAGE)),
          'members',
        );
        all.push(...page.items);
        // A cursor that does not move down would loop forever: stop rather than spin.
        if (page.nextBefore === null || (before !== null && page.nextBefore >= before)) return all;
        before = page.nextBefore;
      }
    },
    setRole: (project, user, role) =>
      client.request(`/projects/${project}/members/${user}`, { method: 'PUT', body: { role } }),
    removeMember: async (project, user) => {
      await client.request(`/projects/${project}/members/${user}`, { method: 'DELETE' });
    },
    createInvite: (project, role, maxUses = 10) =>
      client.post(`/projects/${project}/invites`, { role, max_uses: maxUses }),
    acceptInvite: async (code) =>
      (await client.post<{ project: Project }>(`/invites/${enc(code)}/accept`)).project,
    catalog: async () => {
      const body = await client.get<Partial<ModelCatalog>>('/models');
      return { models: body.models ?? [], loras: body.loras ?? [] };
    },
    submitJob: (project, job) => client.post(`/projects/${project}/jobs`, job),
    cancelJob: (job) => client.post(`/jobs/${job}/cancel`),
    image: (id) => client.get(`/images/${id}`),
    setReaction: (image, emoji, on) =>
      client.request(`/images/${image}/reactions/${enc(emoji)}`, { method: on ? 'PUT' : 'DELETE' }),
  };
}

export const rest: Rest = createRest();
