// RoomStore: the room built from events, progress and previews.
import { describe, expect, it } from 'vitest';
import type { ApiEvent, Image, Job } from '../api/models';
import { RoomStore } from './room';

function job(id: number, state: Job['state'], extra: Partial<Job> = {}): Job {
  return {
    id, project_id: 1, state, model: 'cppn', prompt: `job ${id}`, negative_prompt: '', width: 64, height: 64,
    steps: 4, guidance: 1, seed: 1, count: 1, sampler: 'euler', mode: 'txt2img', strength: 0.5,
    parent_image_id: null, priority: 0, progress: { step: 0, steps: 4 }, attempt: 0, max_attempts: 3,
    position: null, cancel_requested: false, images: [], error: null, submitted_by: 7,
    created_at: '', queued_at: '', started_at: null, finished_at: null, updated_at: '', ...extra,
  };
}
let seq = 0;
function event(type: string, data: Record<string, unknown>): ApiEvent {
  return { seq: ++seq, type, ts: '2026-11-26T00:00:00Z', actor: 7, data };
}
const image = (id: number, parent: number | null = null): Image => ({
  id, project_id: 1, job_id: 0, source: 'generated', original_name: null, index: 0, created_by: 8, width: 64,
  height: 64, seed: 1, parent_image_id: parent, sha256: '0'.repeat(64), bytes: 1, url: `/api/v1/images/${id}/file`,
  thumb_url: `/api/v1/images/${id}/thumb`, created_at: '',
});
const upload = (id: number, by: number, created_at = '', name: string | null = 'cat.png'): Image => ({
  ...image(id), job_id: null, source: 'upload', original_name: name, created_by: by, seed: 0, created_at,
});
const at = (s: number) => `2026-11-26T00:00:${String(s).padStart(2, '0')}.000Z`;
const order = (s: RoomStore) => s.timeline.value.map((e) => (e.kind === 'job' ? `job ${e.job.id}` : `upload ${e.image.id}`));

describe('RoomStore', () => {
  it('keeps each job as its latest event says, in submission order, with images and lineage', () => {
    const s = new RoomStore(7);
    s.apply(event('job.queued', { job: job(2, 'queued', { position: 2 }) }));
    s.apply(event('job.queued', { job: job(1, 'queued') }));
    s.apply(event('job.started', { job: job(1, 'running') }));
    expect(s.feed.value.map((j) => [j.id, j.state])).toEqual([[1, 'running'], [2, 'queued']]);
    expect(s.placeInLine(s.jobs.value.get(2)!)).toBe(2);
    s.apply(event('job.done', { job: job(1, 'done', { images: [image(10)] }) }));
    s.apply(event('job.done', { job: job(2, 'done', { images: [image(11, 10)], parent_image_id: 10, mode: 'variation' }) }));
    expect(s.images.value.get(11)?.parent_image_id).toBe(10);
    expect(s.lastSeq.value).toBe(seq);
  });

  it('shows the server’s queue position, not a count of this room’s jobs', () => {
    const s = new RoomStore(7);
    // The fair scheduler takes users and projects in turn: job 6 (another user's first) starts
    // before job 5, and two jobs of other projects come before job 5 as well.
    s.apply(event('job.queued', { job: job(5, 'queued', { position: 3 }) }));
    s.apply(event('job.queued', { job: job(6, 'queued', { submitted_by: 8, position: 1 }) }));
    expect(s.placeInLine(s.jobs.value.get(5)!)).toBe(3);
    expect(s.placeInLine(s.jobs.value.get(6)!)).toBe(1);
    // A later event of the job (queued again after its worker stopped) carries its new place.
    s.apply(event('job.queued', { job: job(5, 'queued', { attempt: 1, position: 2 }) }));
    expect(s.placeInLine(s.jobs.value.get(5)!)).toBe(2);
    // Unknown to the server: no place is made up.
    s.apply(event('job.queued', { job: job(7, 'queued', { position: null }) }));
    expect(s.placeInLine(s.jobs.value.get(7)!)).toBeNull();
    s.apply(event('job.started', { job: job(6, 'running') }));
    expect(s.placeInLine(s.jobs.value.get(6)!)).toBeNull();
  });

  it('shows progress and previews of running jobs only, and lets go of preview URLs', () => {
    const made: string[] = [];
    const revoked: string[] = [];
    const s = new RoomStore(7, () => `blob:${made.push('x')}`, (u) => revoked.push(u));
    s.apply(event('job.started', { job: job(3, 'running') }));
    s.onProgress(3, 2, 4);
    s.onPreview(3, new Uint8Array([1]), 'jpeg');
    s.onPreview(3, new Uint8Array([2]), 'jpeg');
    expect(s.progress.value.get(3)).toEqual({ step: 2, steps: 4 });
    expect(s.previews.value.get(3)).toBe('blob:2');
    expect(revoked).toEqual(['blob:1']);
    s.apply(event('job.done', { job: job(3, 'done') }));
    expect(s.progress.value.has(3)).toBe(false);
    expect(s.previews.value.has(3)).toBe(false);
    expect(revoked).toEqual(['blob:1', 'blob:2']);
    s.onProgress(3, 4, 4); // late progress of a finished job is ignored
    expect(s.progress.value.has(3)).toBe(false);
  });

  it('skips a replayed job event rather than going back to an older state', () => {
    const s = new RoomStore(7);
    const queued = event('job.queued', { job: job(4, 'queued') });
    s.apply(queued);
    s.apply(event('job.done', { job: job(4, 'done', { images: [image(20)] }) }));
    s.apply(queued);
    expect(s.jobs.value.get(4)?.state).toBe('done');
    expect(s.feed.value).toHaveLength(1);
  });

  it('tracks members, the caller’s role, reactions and renames', () => {
    const s = new RoomStore(7);
    s.project.value = { id: 1, name: 'Old', description: '', created_by: 7, created_at: '', updated_at: '', role: 'editor' };
    s.role.value = 'editor';
    s.apply(event('member.joined', { user_id: 8, username: 'bob', role: 'viewer', via: 'invite' }));
    s.apply(event('member.role_changed', { user_id: 7, username: 'ann', role: 'viewer' }));
    expect(s.role.value).toBe('viewer');
    expect(s.canEdit.value).toBe(false);
    expect(s.members.value.map((m) => m.username)).toEqual(['ann', 'bob']);
    s.apply(event('member.removed', { user_id: 8 }));
    expect(s.members.value.map((m) => m.username)).toEqual(['ann']);
    s.apply(event('reaction.set', { image: 10, emoji: '🔥', user: 8, counts: { '🔥': 2 } }));
    expect(s.reactions.value.get(10)).toEqual({ '🔥': 2 });
    s.apply(event('project.updated', { name: 'New' }));
    expect(s.project.value?.name).toBe('New');
    s.apply(event('something.new', {})); // unknown types are skipped
  });

  it('lets owners cancel anything running or queued, editors their own jobs, viewers nothing', () => {
    const s = new RoomStore(7);
    s.role.value = 'editor';
    expect(s.canCancel(job(1, 'queued', { submitted_by: 7 }))).toBe(true);
    expect(s.canCancel(job(2, 'running', { submitted_by: 8 }))).toBe(false);
    expect(s.canCancel(job(3, 'done', { submitted_by: 7 }))).toBe(false);
    s.role.value = 'owner';
    expect(s.canCancel(job(2, 'running', { submitted_by: 8 }))).toBe(true);
    s.role.value = 'viewer';
    expect(s.canCancel(job(1, 'queued', { submitted_by: 7 }))).toBe(false);
  });

  it('keeps uploads from image.uploaded, once each however often an event is replayed', () => {
    const s = new RoomStore(7);
    const first = event('image.uploaded', { image: upload(10, 8) });
    s.apply(first);
    s.apply(event('image.uploaded', { image: upload(11, 7, '', null) }));
    s.apply(first); // the same event again (a replay after a reconnect): nothing changes
    expect(s.lastSeq.value).toBe(seq);
    // The same upload in another event (a replay the server numbered anew) is still one.
    s.apply(event('image.uploaded', { image: upload(10, 8) }));
    expect([...s.uploads.value.keys()]).toEqual([10, 11]);
    expect(order(s)).toEqual(['upload 10', 'upload 11']);
    // Uploads are images of the room (so a job made from one finds its parent), next to the
    // images of jobs, which stay.
    s.apply(event('job.done', { job: job(3, 'done', { images: [image(12, 10)], parent_image_id: 10, mode: 'inpaint' }) }));
    expect(s.images.value.get(10)?.source).toBe('upload');
    expect(s.images.value.get(12)?.parent_image_id).toBe(10);
    expect([...s.images.value.keys()].sort()).toEqual([10, 11, 12]);
    s.apply(event('image.uploaded', {})); // malformed: skipped
    s.apply(event('image.uploaded', { image: { id: 'x' } }));
    expect(s.uploads.value.size).toBe(2);
  });

  it('puts uploads among the jobs in time order', () => {
    const s = new RoomStore(7);
    s.apply(event('job.queued', { job: job(1, 'queued', { created_at: at(1) }) }));
    s.apply(event('image.uploaded', { image: upload(10, 8, at(2)) }));
    s.apply(event('job.queued', { job: job(2, 'queued', { created_at: at(3) }) }));
    s.apply(event('image.uploaded', { image: upload(11, 7, at(4)) }));
    s.apply(event('job.started', { job: job(1, 'running', { created_at: at(1) }) }));
    s.apply(event('job.done', { job: job(1, 'done', { created_at: at(1), images: [image(12)] }) }));
    expect(order(s)).toEqual(['job 1', 'upload 10', 'job 2', 'upload 11']);
    // A later job's events and the replay of an upload move nothing.
    s.apply(event('image.uploaded', { image: upload(10, 8, at(2)) }));
    s.apply(event('job.done', { job: job(2, 'done', { created_at: at(3) }) }));
    expect(order(s)).toEqual(['job 1', 'upload 10', 'job 2', 'upload 11']);
  });

  it('orders by the events when times are equal or missing', () => {
    const s = new RoomStore(7);
    s.apply(event('image.uploaded', { image: upload(10, 8, at(5)) }));
    s.apply(event('job.queued', { job: job(1, 'queued', { created_at: at(5) }) }));
    s.apply(event('job.queued', { job: job(2, 'queued') }));
    s.apply(event('image.uploaded', { image: upload(11, 8) }));
    expect(order(s)).toEqual(['upload 10', 'job 1', 'job 2', 'upload 11']);
  });

  it('names the caller by username where “you” would not do', () => {
    const s = new RoomStore(7);
    s.members.value = [
      { user_id: 7, username: 'ann', role: 'owner', added_at: '' },
      { user_id: 8, username: 'bob', role: 'editor', added_at: '' },
    ];
    expect(s.usernameOf(7)).toBe('you');
    expect(s.nameOf(7)).toBe('ann');
    expect(s.nameOf(8)).toBe('bob');
    expect(s.nameOf(null)).toBe('a former member');
  });
});
