// LiveClient: the browser's end of the live protocol (proto/websocket.md).
//
// - One WebSocket, greeted with `hello`; reconnects with exponential backoff and jitter after
//   any drop, at once when the browser comes back online.
// - Subscriptions remember the last `seq` they applied and resubscribe from it after a
//   reconnect, so nothing is missed. Events are applied strictly in order, each exactly once:
//   a repeat (seq <= last) is dropped, a gap (seq > last + 1) is never applied but makes the
//   client subscribe again from `last`, which the server answers with exactly what is missing.
// - Commands (`cmd`) get an id; one still unanswered when the connection drops is sent again,
//   with the same id, after the next `welcome` (the server executes an id once).
//
// Everything it needs from the page (the socket, timers, randomness, ids, online events) is
// injected, so live_client.test.ts drives it with a fake socket and fake time.
import { signal, type ReadonlySignal } from '@preact/signals';
import type { ApiEvent, User } from '../api/models';
import { parsePreviewFrame, type PreviewFrame } from '../api/preview';
import {
  CloseCode,
  PROTOCOL_VERSION,
  parseServerMessage,
  type ClientMessage,
  type CmdOp,
  type ErrorMessage,
  type PresenceMessage,
  type PresenceState,
  type ProgressMessage,
  type SubscribedMessage,
  type UnsubscribedMessage,
  type WireError,
} from './protocol';

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'signed_out' | 'stopped';

/** The parts of a browser WebSocket the client uses. */
export interface SocketLike {
  binaryType: string;
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface LiveClientOptions {
  /** ws:// or wss:// URL of /api/v1/ws. */
  url: string;
  createSocket?: (url: string) => SocketLike;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  random?: () => number;
  newId?: () => string;
  /** Registers online/offline listeners; returns a function that removes them. */
  watchNetwork?: (onOnline: () => void, onOffline: () => void) => () => void;
  /** First retry delay and the cap of the backoff (ms). */
  minRetryMs?: number;
  maxRetryMs?: number;
}

/** What a subscription hears about its project. */
export interface ProjectHandlers {
  /** Every durable event, in seq order, exactly once. */
  onEvent(event: ApiEvent): void;
  onSubscribed?(message: SubscribedMessage): void;
  onProgress?(message: ProgressMessage): void;
  onPreview?(frame: PreviewFrame): void;
  onPresence?(message: PresenceMessage): void;
  /** The server ended the subscription (removed from the project, project deleted). */
  onUnsubscribed?(message: UnsubscribedMessage): void;
  /** The server refused the subscription (e.g. `not_found`). */
  onRefused?(error: ErrorMessage): void;
}

interface Subscription {
  project: number;
  lastSeq: number;
  /** A subscribe was sent and its `subscribed` has not come yet. */
  pending: boolean;
  presence: PresenceState | null;
  handlers: ProjectHandlers;
}

interface PendingCmd {
  id: string;
  op: CmdOp;
  args: Record<string, unknown>;
  resolve: (result: unknown) => void;
  reject: (error: CommandError) => void;
}

/** A refused command: the server's error (code, message, field). */
export class CommandError extends Error {
  readonly code: string;
  readonly field: string | undefined;
  constructor(error: WireError) {
    super(error.message);
    this.name = 'CommandError';
    this.code = error.code;
    this.field = error.field;
  }
}

const OPEN = 1;

function defaultId(): string {
  const c = globalThis.crypto;
  if (c && 'randomUUID' in c) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function defaultWatchNetwork(onOnline: () => void, onOffline: () => void): () => void {
  if (typeof window === 'undefined') return () => {};
  window.addEventListener('online', onOnline);
  window.addEventListener('offline', onOffline);
  return () => {
    window.removeEventListener('online', onOnline);
    window.removeEventListener('offline', onOffline);
  };
}

export class LiveClient {
  private readonly opts: Required<LiveClientOptions>;
  private readonly statusSignal = signal<ConnectionStatus>('stopped');
  private readonly userSignal = signal<User | null>(null);
  private socket: SocketLike | null = null;
  private greeted = false;
  private retryTimer: unknown = null;
  private attempt = 0;
  private stopNetwork: (() => void) | null = null;
  private offline = false;
  private readonly subs = new Map<number, Subscription>();
  private readonly cmds = new Map<string, PendingCmd>();

  constructor(options: LiveClientOptions) {
    this.opts = {
      createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      random: Math.random,
      newId: defaultId,
      watchNetwork: defaultWatchNetwork,
      minRetryMs: 500,
      maxRetryMs: 15_000,
      ...options,
    };
  }

  /** connecting / connected / reconnecting / offline; signed_out after 1008. */
  get status(): ReadonlySignal<ConnectionStatus> {
    return this.statusSignal;
  }
  /** The signed-in user, from the last `welcome`. */
  get user(): ReadonlySignal<User | null> {
    return this.userSignal;
  }

  start(): void {
    if (this.statusSignal.value !== 'stopped') return;
    this.stopNetwork = this.opts.watchNetwork(
      () => {
        this.offline = false;
        if (!this.socket) this.reconnectNow();
      },
      () => {
        // The socket may linger after the network is gone; drop it and wait for `online`.
        this.offline = true;
        this.dropSocket();
        this.statusSignal.value = 'offline';
      },
    );
    this.connect();
  }

  stop(): void {
    this.stopNetwork?.();
    this.stopNetwork = null;
    this.cancelRetry();
    this.dropSocket();
    this.statusSignal.value = 'stopped';
  }

  /**
   * Receives `project` from `afterSeq` on (0: its whole log). Returns a function that ends the
   * subscription. One subscription per project: a second call replaces the first.
   */
  subscribe(project: number, afterSeq: number, handlers: ProjectHandlers): () => void {
    const sub: Subscription = { project, lastSeq: afterSeq, pending: false, presence: null, handlers };
    this.subs.set(project, sub);
    if (this.greeted) this.sendSubscribe(sub);
    return () => {
      if (this.subs.get(project) !== sub) return;
      this.subs.delete(project);
      if (this.greeted) this.send({ type: 'unsubscribe', project });
    };
  }

  /** The last seq applied for `project` (the resume point). */
  lastSeq(project: number): number {
    return this.subs.get(project)?.lastSeq ?? 0;
  }

  /** Tells the room what this user is doing; sent again after a reconnect. */
  setPresence(project: number, state: PresenceState): void {
    const sub = this.subs.get(project);
    if (!sub) return;
    sub.presence = state;
    if (this.greeted && !sub.pending) this.send({ type: 'presence', project, state });
  }

  /**
   * Runs a command. Resolves with the ack's `result`, rejects with CommandError on a refusal.
   * Survives reconnects: it is sent (again) whenever a connection is greeted, until answered.
   */
  command(op: CmdOp, args: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const cmd: PendingCmd = { id: this.opts.newId(), op, args, resolve, reject };
      this.cmds.set(cmd.id, cmd);
      if (this.greeted) this.sendCmd(cmd);
    });
  }

  /** Commands sent and not answered yet. */
  get pendingCommands(): number {
    return this.cmds.size;
  }

  // ---- Connection.

  private connect(): void {
    this.cancelRetry();
    this.greeted = false;
    this.statusSignal.value = this.attempt === 0 ? 'connecting' : 'reconnecting';
    let socket: SocketLike;
    try {
      socket = this.opts.createSocket(this.opts.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket === socket) this.send({ type: 'hello', proto: PROTOCOL_VERSION });
    };
    socket.onmessage = (ev) => {
      if (this.socket === socket) this.onData(ev.data);
    };
    socket.onclose = (ev) => {
      if (this.socket === socket) this.onClosed(ev.code);
    };
    socket.onerror = () => {
      // A close event always follows.
    };
  }

  private dropSocket(): void {
    const s = this.socket;
    this.socket = null;
    this.greeted = false;
    if (!s) return;
    s.onopen = s.onmessage = s.onclose = s.onerror = null;
    try {
      s.close(CloseCode.normal, 'client closing');
    } catch {
      // Already closed.
    }
  }

  private onClosed(code: number): void {
    this.socket = null;
    this.greeted = false;
    for (const sub of this.subs.values()) sub.pending = false;
    if (code === CloseCode.credentialRevoked) {
      this.statusSignal.value = 'signed_out';
      return;
    }
    if (code === CloseCode.unsupportedProto) {
      this.statusSignal.value = 'stopped';
      return;
    }
    if (this.offline) {
      this.statusSignal.value = 'offline';
      return;
    }
    // 4000 (send queue overflowed) asks for an immediate reconnect; anything else backs off.
    if (code === CloseCode.resume) this.attempt = 0;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.statusSignal.value = this.offline ? 'offline' : 'reconnecting';
    if (this.offline) return;
    const base = Math.min(this.opts.maxRetryMs, this.opts.minRetryMs * 2 ** this.attempt);
    const delay = base / 2 + (base / 2) * this.opts.random();
    this.attempt += 1;
    this.retryTimer = this.opts.setTimer(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private reconnectNow(): void {
    this.cancelRetry();
    this.dropSocket();
    this.connect();
  }

  private cancelRetry(): void {
    if (this.retryTimer !== null) this.opts.clearTimer(this.retryTimer);
    this.retryTimer = null;
  }

  private send(message: ClientMessage): void {
    const s = this.socket;
    if (!s || s.readyState !== OPEN) return;
    try {
      s.send(JSON.stringify(message));
    } catch {
      // The close event follows.
    }
  }

  private sendSubscribe(sub: Subscription): void {
    sub.pending = true;
    this.send({ type: 'subscribe', project: sub.project, after_seq: sub.lastSeq });
  }

  private sendCmd(cmd: PendingCmd): void {
    this.send({ type: 'cmd', id: cmd.id, op: cmd.op, args: cmd.args });
  }

  // ---- Messages.

  private onData(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      let frame: PreviewFrame;
      try {
        frame = parsePreviewFrame(data);
      } catch {
        return; // not a preview this client understands
      }
      this.subs.get(frame.project)?.handlers.onPreview?.(frame);
      return;
    }
    if (typeof data !== 'string') return;
    const m = parseServerMessage(data);
    if (!m) return;
    switch (m.type) {
      case 'welcome':
        this.greeted = true;
        this.attempt = 0;
        this.userSignal.value = m.user;
        this.statusSignal.value = 'connected';
        for (const sub of this.subs.values()) this.sendSubscribe(sub);
        for (const cmd of this.cmds.values()) this.sendCmd(cmd);
        return;
      case 'subscribed': {
        const sub = this.subs.get(m.project);
        if (!sub) return;
        sub.pending = false;
        sub.handlers.onSubscribed?.(m);
        if (sub.presence) this.send({ type: 'presence', project: sub.project, state: sub.presence });
        return;
      }
      case 'event':
        return this.onEvent(m.project, m.event);
      case 'progress':
        this.subs.get(m.project)?.handlers.onProgress?.(m);
        return;
      case 'presence':
        this.subs.get(m.project)?.handlers.onPresence?.(m);
        return;
      case 'unsubscribed': {
        const sub = this.subs.get(m.project);
        if (!sub || m.reason === 'requested') return;
        this.subs.delete(m.project);
        sub.handlers.onUnsubscribed?.(m);
        return;
      }
      case 'ack': {
        const cmd = this.cmds.get(m.id);
        if (!cmd) return; // an answer to a resend already answered
        this.cmds.delete(m.id);
        if (m.ok) cmd.resolve(m.result);
        else cmd.reject(new CommandError(m.error ?? { code: 'unknown', message: 'The command failed' }));
        return;
      }
      case 'error':
        // A refused subscribe names its field (`project` or `after_seq`), not the project:
        // it belongs to the subscriptions still waiting for their `subscribed`.
        if (m.field === 'project' || m.field === 'after_seq') {
          for (const sub of [...this.subs.values()]) {
            if (!sub.pending) continue;
            this.subs.delete(sub.project);
            sub.handlers.onRefused?.(m);
          }
        }
        return;
    }
  }

  private onEvent(project: number, event: ApiEvent): void {
    const sub = this.subs.get(project);
    if (!sub) return;
    if (event.seq <= sub.lastSeq) return; // seen already (a replay overlapping live events)
    if (event.seq !== sub.lastSeq + 1) {
      // A gap: never apply out of order. Ask again from the last one applied, once.
      if (!sub.pending) this.sendSubscribe(sub);
      return;
    }
    sub.lastSeq = event.seq;
    sub.handlers.onEvent(event);
  }
}
