// The live protocol of proto/websocket.md (version 1), as TypeScript types.
//
// REST shapes come from proto/openapi.yaml through the generated src/api/schema.d.ts; the
// WebSocket messages are described in proto/websocket.md's tables, so they are written here
// once and protocol.test.ts checks every message type and field name against those tables:
// a change on either side without the other fails the tests.
import type { ApiEvent, Image, Job, Me } from '../api/models';

export const PROTOCOL_VERSION = 1;

/** Close codes of proto/websocket.md that change what the client does next. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  credentialRevoked: 1008,
  tooBig: 1009,
  serverError: 1011,
  // The server's budget for messages being received is spent: backs off like any other close.
  tryAgainLater: 1013,
  resume: 4000,
  unsupportedProto: 4001,
  noHello: 4002,
} as const;

// ---- Client to server.

export interface HelloMessage {
  type: 'hello';
  proto: number;
}
export interface SubscribeMessage {
  type: 'subscribe';
  project: number;
  after_seq: number;
}
export interface UnsubscribeMessage {
  type: 'unsubscribe';
  project: number;
}
export interface PresenceStateMessage {
  type: 'presence';
  project: number;
  state: PresenceState;
}
export interface CmdMessage {
  type: 'cmd';
  id: string;
  op: CmdOp;
  args: Record<string, unknown>;
}
export type ClientMessage =
  | HelloMessage
  | SubscribeMessage
  | UnsubscribeMessage
  | PresenceStateMessage
  | CmdMessage;

export type CmdOp = 'job.submit' | 'job.cancel' | 'reaction.set' | 'reaction.clear';

/** What a member says they are doing; the client sends `typing` and `viewing`. */
export interface PresenceState {
  typing?: boolean;
  viewing?: number;
}

// ---- Server to client.

export interface WelcomeMessage {
  type: 'welcome';
  proto: number;
  user: Me['user'];
  session: string;
}
export interface SubscribedMessage {
  type: 'subscribed';
  project: number;
  role: 'viewer' | 'editor' | 'owner';
  head_seq: number;
}
export interface UnsubscribedMessage {
  type: 'unsubscribed';
  project: number;
  reason: 'requested' | 'removed' | 'left' | 'project_deleted';
}
export interface EventMessage {
  type: 'event';
  project: number;
  event: ApiEvent;
}
export interface ProgressMessage {
  type: 'progress';
  project: number;
  job: number;
  step: number;
  steps: number;
  at_us: number;
}
export interface PresenceMember {
  user: number;
  username: string;
  state: PresenceState;
  sessions: number;
}
export interface PresenceMessage {
  type: 'presence';
  project: number;
  members: PresenceMember[];
}
export interface WireError {
  code: string;
  message: string;
  field?: string;
}
export interface AckMessage {
  type: 'ack';
  id: string;
  ok: boolean;
  result?: unknown;
  error?: WireError;
}
export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  field?: string;
}
export type ServerMessage =
  | WelcomeMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | EventMessage
  | ProgressMessage
  | PresenceMessage
  | AckMessage
  | ErrorMessage;

/** The field names of each message type, as proto/websocket.md lists them (checked by a test). */
export const CLIENT_FIELDS = {
  hello: ['proto'],
  subscribe: ['project', 'after_seq'],
  unsubscribe: ['project'],
  presence: ['project', 'state'],
  cmd: ['id', 'op', 'args'],
} as const satisfies Record<ClientMessage['type'], readonly string[]>;
export const SERVER_FIELDS = {
  welcome: ['proto', 'user', 'session'],
  subscribed: ['project', 'role', 'head_seq'],
  unsubscribed: ['project', 'reason'],
  event: ['project', 'event'],
  progress: ['project', 'job', 'step', 'steps', 'at_us'],
  presence: ['project', 'members'],
  ack: ['id', 'ok', 'result', 'error'],
  error: ['code', 'message', 'field'],
} as const satisfies Record<ServerMessage['type'], readonly string[]>;
export const CMD_OPS: readonly CmdOp[] = ['job.submit', 'job.cancel', 'reaction.set', 'reaction.clear'];

/** The durable event types of this protocol version, as proto/websocket.md lists them. */
export const EVENT_TYPES = [
  'project.created',
  'project.updated',
  'member.added',
  'member.joined',
  'member.role_changed',
  'member.left',
  'member.removed',
  'job.queued',
  'job.started',
  'job.done',
  'job.failed',
  'job.cancelled',
  'reaction.set',
  'reaction.clear',
  'image.uploaded',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

// Compile-time tie between the tables above and the types: a field listed that the type lacks
// (or a type without its table) does not compile.
type FieldsOf<T> = Exclude<keyof T, 'type'>;
type Check<T extends { type: string }, F extends Record<T['type'], readonly string[]>> = {
  [K in T['type']]: F[K][number] extends FieldsOf<Extract<T, { type: K }>> ? true : never;
};
export const clientFieldsCheck: Check<ClientMessage, typeof CLIENT_FIELDS> = {
  hello: true,
  subscribe: true,
  unsubscribe: true,
  presence: true,
  cmd: true,
};
export const serverFieldsCheck: Check<ServerMessage, typeof SERVER_FIELDS> = {
  welcome: true,
  subscribed: true,
  unsubscribed: true,
  event: true,
  progress: true,
  presence: true,
  ack: true,
  error: true,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses one text frame into a server message; null for anything that is not a JSON object
 * with a known `type` and the fields that type needs (unknown types are skipped, as the
 * protocol asks of clients).
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(v) || typeof v.type !== 'string') return null;
  const num = (k: string) => typeof v[k] === 'number';
  switch (v.type) {
    case 'welcome':
      return num('proto') && isRecord(v.user) ? (v as unknown as WelcomeMessage) : null;
    case 'subscribed':
      return num('project') && num('head_seq') ? (v as unknown as SubscribedMessage) : null;
    case 'unsubscribed':
      return num('project') ? (v as unknown as UnsubscribedMessage) : null;
    case 'event':
      return num('project') && isRecord(v.event) && typeof v.event.seq === 'number'
        ? (v as unknown as EventMessage)
        : null;
    case 'progress':
      return num('project') && num('job') && num('step') && num('steps')
        ? (v as unknown as ProgressMessage)
        : null;
    case 'presence':
      return num('project') && Array.isArray(v.members) ? (v as unknown as PresenceMessage) : null;
    case 'ack':
      return typeof v.id === 'string' && typeof v.ok === 'boolean' ? (v as unknown as AckMessage) : null;
    case 'error':
      return typeof v.code === 'string' ? (v as unknown as ErrorMessage) : null;
    default:
      return null;
  }
}

/** The job carried by a job.* event, if it is one. */
export function jobOfEvent(event: ApiEvent): Job | null {
  if (!event.type.startsWith('job.')) return null;
  const data = event.data as { job?: Job };
  return data.job && typeof data.job.id === 'number' ? data.job : null;
}

/** The image of an image.uploaded event (`data.image`), if it is one. */
export function imageOfEvent(event: ApiEvent): Image | null {
  if (event.type !== 'image.uploaded') return null;
  const data = event.data as { image?: Image };
  return data.image && typeof data.image.id === 'number' ? data.image : null;
}
