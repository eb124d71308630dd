// LiveClient against a fake socket and fake time: ordered apply (repeats dropped, gaps never
// applied but resubscribed from the last seq), resume after a reconnect, commands resent with
// the same id until answered, backoff, offline handling.
import { beforeEach, describe, expect, it } from 'vitest';
import type { ApiEvent } from '../api/models';
import { CommandError, LiveClient, type SocketLike } from './live_client';

class FakeSocket implements SocketLike {
  binaryType = 'blob';
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: Record<string, unknown>[] = [];
  closed = false;
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    this.closed = true;
  }
  // Test side.
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(message: unknown): void {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  ofType(type: string): Record<string, unknown>[] {
    return this.sent.filter((m) => m.type === type);
  }
}

function ev(seq: number, type = 'job.queued'): ApiEvent {
  return { seq, type, ts: '2026-11-26T00:00:00Z', actor: 1, data: {} };
}

describe('LiveClient', () => {
  let sockets: FakeSocket[];
  let timers: { fn: () => void; ms: number }[];
  let ids: number;
  let network: { online: () => void; offline: () => void };
  let client: LiveClient;

  const socket = () => sockets[sockets.length - 1] as FakeSocket;
  const runTimers = () => {
    const due = timers;
    timers = [];
    for (const t of due) t.fn();
  };
  const greet = (s: FakeSocket) => {
    s.open();
    s.receive({ type: 'welcome', proto: 1, user: { id: 7, username: 'ann' }, session: 's' });
  };

  beforeEach(() => {
    sockets = [];
    timers = [];
    ids = 0;
    client = new LiveClient({
      url: 'ws://x/api/v1/ws',
      createSocket: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      setTimer: (fn, ms) => {
        const t = { fn, ms };
        timers.push(t);
        return t;
      },
      clearTimer: (h) => {
        timers = timers.filter((t) => t !== h);
      },
      random: () => 1,
      newId: () => `c${++ids}`,
      watchNetwork: (online, offline) => {
        network = { online, offline };
        return () => {};
      },
    });
  });

  it('says hello, then subscribes from the given seq, and applies events in order', () => {
    const applied: number[] = [];
    client.subscribe(5, 0, { onEvent: (e) => applied.push(e.seq) });
    client.start();
    expect(client.status.value).toBe('connecting');
    socket().open();
    expect(socket().sent[0]).toEqual({ type: 'hello', proto: 1 });
    expect(socket().ofType('subscribe')).toEqual([]);
    socket().receive({ type: 'welcome', proto: 1, user: { id: 7, username: 'ann' }, session: 's' });
    expect(client.status.value).toBe('connected');
    expect(client.user.value?.username).toBe('ann');
    expect(socket().ofType('subscribe')).toEqual([{ type: 'subscribe', project: 5, after_seq: 0 }]);
    socket().receive({ type: 'subscribed', project: 5, role: 'editor', head_seq: 2 });
    for (const seq of [1, 2, 3]) socket().receive({ type: 'event', project: 5, event: ev(seq) });
    expect(applied).toEqual([1, 2, 3]);
    expect(client.lastSeq(5)).toBe(3);
  });

  it('drops repeats and never applies out of order: a gap resubscribes from the last seq once', () => {
    const applied: number[] = [];
    client.subscribe(5, 0, { onEvent: (e) => applied.push(e.seq) });
    client.start();
    greet(socket());
    socket().receive({ type: 'subscribed', project: 5, role: 'editor', head_seq: 0 });
    const s = socket();
    s.receive({ type: 'event', project: 5, event: ev(1) });
    s.receive({ type: 'event', project: 5, event: ev(1) }); // duplicate
    s.receive({ type: 'event', project: 5, event: ev(2) });
    s.receive({ type: 'event', project: 5, event: ev(4) }); // gap: 3 missing
    s.receive({ type: 'event', project: 5, event: ev(5) }); // still a gap: no second subscribe
    expect(applied).toEqual([1, 2]);
    expect(s.ofType('subscribe')).toEqual([
      { type: 'subscribe', project: 5, after_seq: 0 },
      { type: 'subscribe', project: 5, after_seq: 2 },
    ]);
    // The server restarts the subscription from 2: 3, 4, 5, and an old 2 arriving late.
    s.receive({ type: 'subscribed', project: 5, role: 'editor', head_seq: 5 });
    for (const seq of [2, 3, 4, 5]) s.receive({ type: 'event', project: 5, event: ev(seq) });
    expect(applied).toEqual([1, 2, 3, 4, 5]);
  });

  it('reconnects with backoff after a drop and resumes from the last seq applied', () => {
    const applied: number[] = [];
    client.subscribe(5, 0, { onEvent: (e) => applied.push(e.seq) });
    client.start();
    greet(socket());
    socket().receive({ type: 'subscribed', project: 5, role: 'editor', head_seq: 0 });
    socket().receive({ type: 'event', project: 5, event: ev(1) });
    socket().drop();
    expect(client.status.value).toBe('reconnecting');
    expect(timers.map((t) => t.ms)).toEqual([500]);
    runTimers();
    expect(sockets).toHaveLength(2);
    socket().drop(); // the server is still away: the next wait is longer
    expect(timers.map((t) => t.ms)).toEqual([1000]);
    runTimers();
    greet(socket());
    expect(socket().ofType('subscribe')).toEqual([{ type: 'subscribe', project: 5, after_seq: 1 }]);
    socket().receive({ type: 'subscribed', project: 5, role: 'editor', head_seq: 3 });
    for (const seq of [2, 3]) socket().receive({ type: 'event', project: 5, event: ev(seq) });
    expect(applied).toEqual([1, 2, 3]);
    socket().drop();
    expect(timers.map((t) => t.ms)).toEqual([500]); // a greeting resets the backoff
  });

  it('resends an unanswered command with the same id after a reconnect, and settles it once', async () => {
    client.start();
    greet(socket());
    const done = client.command('job.submit', { project: 5, prompt: 'a fox' });
    expect(socket().ofType('cmd')).toEqual([{ type: 'cmd', id: 'c1', op: 'job.submit', args: { project: 5, prompt: 'a fox' } }]);
    socket().drop();
    runTimers();
    greet(socket());
    expect(socket().ofType('cmd')).toEqual([{ type: 'cmd', id: 'c1', op: 'job.submit', args: { project: 5, prompt: 'a fox' } }]);
    socket().receive({ type: 'ack', id: 'c1', ok: true, result: { id: 99 } });
    socket().receive({ type: 'ack', id: 'c1', ok: true, result: { id: 99 } }); // a late twin
    await expect(done).resolves.toEqual({ id: 99 });
    expect(client.pendingCommands).toBe(0);
  });

  it('a command made while disconnected goes out once connected; a refusal rejects with the field', async () => {
    const refused = client.command('job.submit', { project: 5, prompt: '' });
    client.start();
    expect(socket().sent).toEqual([]);
    greet(socket());
    expect(socket().ofType('cmd')).toHaveLength(1);
    socket().receive({ type: 'ack', id: 'c1', ok: false, error: { code: 'invalid_argument', message: 'prompt is empty', field: 'prompt' } });
    const err = await refused.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).field).toBe('prompt');
  });

  it('goes offline when the browser does, and reconnects at once when it is back', () => {
    client.subscribe(5, 0, { onEvent: () => {} });
    client.start();
    greet(socket());
    const first = socket();
    network.offline();
    expect(client.status.value).toBe('offline');
    expect(first.closed).toBe(true);
    expect(timers).toEqual([]); // no retries while offline
    network.online();
    expect(sockets).toHaveLength(2);
    greet(socket());
    expect(client.status.value).toBe('connected');
    expect(socket().ofType('subscribe')).toHaveLength(1);
  });

  it('stops for good on 1008 (signed out), and hands refusals and removals to the room', () => {
    const refused: string[] = [];
    const ended: string[] = [];
    client.subscribe(5, 0, { onEvent: () => {}, onRefused: (e) => refused.push(e.code) });
    client.subscribe(6, 0, { onEvent: () => {}, onUnsubscribed: (m) => ended.push(m.reason) });
    client.start();
    greet(socket());
    socket().receive({ type: 'subscribed', project: 6, role: 'viewer', head_seq: 0 });
    socket().receive({ type: 'error', code: 'not_found', message: 'no such project', field: 'project' });
    socket().receive({ type: 'unsubscribed', project: 6, reason: 'removed' });
    expect(refused).toEqual(['not_found']);
    expect(ended).toEqual(['removed']);
    socket().drop(1008);
    expect(client.status.value).toBe('signed_out');
    expect(timers).toEqual([]);
  });

  it('re-sends the presence state after resubscribing', () => {
    client.subscribe(5, 0, { onEvent: () => {} });
    client.start();
    greet(socket());
    socket().receive({ type: 'subscribed', project: 5, role: 'editor', head_seq: 0 });
    client.setPresence(5, { typing: true });
    expect(socket().ofType('presence')).toEqual([{ type: 'presence', project: 5, state: { typing: true } }]);
    socket().drop();
    runTimers();
    greet(socket());
    expect(socket().ofType('presence')).toEqual([]); // not before `subscribed`
    socket().receive({ type: 'subscribed', project: 5, role: 'editor', head_seq: 0 });
    expect(socket().ofType('presence')).toEqual([{ type: 'presence', project: 5, state: { typing: true } }]);
  });
});
