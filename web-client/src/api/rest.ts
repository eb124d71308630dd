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

export interface Rest {
  register(username: string, password: string, invite?: string): Promise<Session>;
  login(username: string, password: string): Promise<Session>;
  logout(): Promise<void>;
  me(): Promise<Me>;
  projects(): Promise<Project[]>;
  createProject(name: string): Promise<Project>;
  project(id: number): Promise<Project>;
  renameProject(id: number, name: string): Promise<Project>;
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
    projects: async () => (await client.get<{ projects: Project[] }>('/projects')).projects,
    createProject: (name) => client.post('/projects', { name }),
    project: (id) => client.get(`/projects/${id}`),
    renameProject: (id, name) => client.request(`/projects/${id}`, { method: 'PATCH', body: { name } }),
    members: async (project) =>
      (await client.get<{ members: Member[] }>(`/projects/${project}/members`)).members,
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
