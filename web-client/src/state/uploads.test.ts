// The upload queue (one file after another, failures kept with their files) and the draft that
// remixes a fresh upload.
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { Image, Model } from '../api/models';
import { draftFor } from './draft';
import { remixDraft, UploadQueue } from './uploads';

const img = (id: number): Image => ({ id, thumb_url: `/api/v1/images/${id}/thumb`, source: 'upload' }) as Image;
const file = (name: string) => new File([new Uint8Array([1])], name, { type: 'image/png' });

/** A send whose calls are settled by hand, to see what runs when. */
function manualSend() {
  const calls: { name: string; resolve: (i: Image) => void; reject: (e: unknown) => void }[] = [];
  const send = (f: Blob) =>
    new Promise<Image>((resolve, reject) => calls.push({ name: (f as File).name, resolve, reject }));
  return { calls, send };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('UploadQueue', () => {
  it('sends files one after another, in order, reporting each upload', async () => {
    const { calls, send } = manualSend();
    const done: number[] = [];
    const q = new UploadQueue(send, (i) => done.push(i.id));
    q.add([file('a.png'), file('b.png')]);
    q.add([file('c.png')]);
    expect(calls.map((c) => c.name)).toEqual(['a.png']); // only one in flight
    expect(q.current.value?.name).toBe('a.png');
    expect(q.waiting.value.map((w) => w.name)).toEqual(['b.png', 'c.png']);
    calls[0]!.resolve(img(1));
    await tick();
    expect(calls.map((c) => c.name)).toEqual(['a.png', 'b.png']);
    calls[1]!.resolve(img(2));
    await tick();
    calls[2]!.resolve(img(3));
    await q.idle();
    expect(done).toEqual([1, 2, 3]);
    expect(q.current.value).toBeNull();
    expect(q.waiting.value).toEqual([]);
    // A file added after the queue ran dry starts it again.
    q.add([file('d.png')]);
    expect(calls).toHaveLength(4);
    calls[3]!.resolve(img(4));
    await q.idle();
    expect(done).toEqual([1, 2, 3, 4]);
  });

  it('keeps each failure with its message and file, goes on with the rest, and retries on demand', async () => {
    const { calls, send } = manualSend();
    const done: number[] = [];
    const q = new UploadQueue(send, (i) => done.push(i.id));
    q.add([file('big.png'), file('net.png'), file('ok.png')]);
    calls[0]!.reject(new ApiError({ status: 413, code: 'body_too_large', message: 'request body of 9 bytes exceeds the limit of 20065536' }));
    await tick();
    calls[1]!.reject(new ApiError({ status: 0, code: 'network', message: 'Cannot reach the server' }));
    await tick();
    calls[2]!.resolve(img(5));
    await q.idle();
    expect(done).toEqual([5]);
    expect(q.failures.value.map((f) => [f.name, f.message, f.retryable])).toEqual([
      ['big.png', 'big.png: too large: max 20 MB', false],
      ['net.png', 'net.png: Cannot reach the server. Check your connection and try again.', true],
    ]);
    const net = q.failures.value[1]!;
    q.retry(net.key);
    expect(q.failures.value.map((f) => f.name)).toEqual(['big.png']);
    expect(calls.map((c) => c.name)).toEqual(['big.png', 'net.png', 'ok.png', 'net.png']);
    calls[3]!.resolve(img(6));
    await q.idle();
    expect(done).toEqual([5, 6]);
    q.dismiss(q.failures.value[0]!.key);
    expect(q.failures.value).toEqual([]);
  });

  it('after the room is left, drops what waits and reports nothing', async () => {
    const { calls, send } = manualSend();
    const done: number[] = [];
    const q = new UploadQueue(send, (i) => done.push(i.id));
    q.add([file('a.png'), file('b.png')]);
    q.dispose();
    calls[0]!.resolve(img(1));
    await q.idle();
    expect(calls).toHaveLength(1);
    expect(done).toEqual([]);
    q.add([file('c.png')]);
    expect(calls).toHaveLength(1);
  });
});

describe('remixDraft', () => {
  const params = (modes: Model['params']['modes'], strength = 0.6) =>
    ({
      width: { min: 64, max: 1024, default: 512, multiple_of: 8 },
      height: { min: 64, max: 1024, default: 512, multiple_of: 8 },
      steps: { min: 1, max: 50, default: 20 },
      count: { min: 1, max: 4, default: 1 },
      guidance: { min: 0, max: 20, default: 7 },
      strength: { min: 0, max: 1, default: strength },
      seed: { min: -1, max: 2 ** 53 - 1, default: -1 },
      samplers: ['euler'],
      default_sampler: 'euler',
      modes,
      upscale_factors: [2],
    }) as Model['params'];
  const model = (id: string, modes: Model['params']['modes'], extra: Partial<Model> = {}) =>
    ({ id, kind: 'builtin', description: '', params: params(modes, id === 'b' ? 0.75 : 0.6), ...extra }) as Model;
  const a = model('a', ['txt2img']);
  const b = model('b', ['txt2img', 'remix']);
  const off = model('off', ['txt2img', 'remix'], { available: false });

  it('remixes the image with the draft’s model when it can, keeping the prompt', () => {
    const d = { ...draftFor(b), prompt: 'a fox' };
    const r = remixDraft(d, img(9), [a, b]);
    expect(r).toMatchObject({ model: 'b', prompt: 'a fox', mode: 'remix', parent: { id: 9, thumb: '/api/v1/images/9/thumb' }, strength: 0.75 });
  });

  it('switches to a usable model that remixes, and gives up when there is none', () => {
    const r = remixDraft({ ...draftFor(a), prompt: 'a fox' }, img(9), [off, a, b]);
    expect(r).toMatchObject({ model: 'b', prompt: 'a fox', mode: 'remix', parent: { id: 9 } });
    expect(remixDraft(null, img(9), [a, b])?.model).toBe('b');
    expect(remixDraft(null, img(9), [a, off])).toBeNull();
  });
});
