// RoomStore: what a project room shows, built from the project's ordered events (the live
// client hands each one over once, in seq order) plus the ephemeral progress, previews and
// presence. Plain signals: components that read them re-render on change.
//
// Applying an event again (a replay) changes nothing: an event at or below the last seq is
// skipped, and jobs and uploads are kept by id (each with the seq of the event that first
// brought it, which orders the feed where times do not).
import { batch, computed, signal } from '@preact/signals';
import type { ApiEvent, Image, Job, Member, Project, ReactionCounts, Role } from '../api/models';
import { imageOfEvent, jobOfEvent, type PresenceMember } from '../live/protocol';

export interface StepProgress {
  step: number;
  steps: number;
}

/** One entry of the room's feed: a job, or an image someone uploaded. */
export type FeedEntry = { kind: 'job'; job: Job } | { kind: 'upload'; image: Image };

/** The time of an ISO timestamp in ms, or null when there is none to read. */
function timeOf(iso: string): number | null {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : null;
}

export class RoomStore {
  readonly project = signal<Project | null>(null);
  /** The caller's role (from `subscribed`, kept current by member.* events). */
  readonly role = signal<Role | null>(null);
  readonly members = signal<Member[]>([]);
  readonly presence = signal<PresenceMember[]>([]);
  /** Every job, by id. */
  readonly jobs = signal<ReadonlyMap<number, Job>>(new Map());
  /** Every uploaded image (image.uploaded events), by id. */
  readonly uploads = signal<ReadonlyMap<number, Image>>(new Map());
  readonly progress = signal<ReadonlyMap<number, StepProgress>>(new Map());
  /** A running job's latest preview, as an object URL (made by `previewUrl`). */
  readonly previews = signal<ReadonlyMap<number, string>>(new Map());
  /** Reaction counts of images that have had a reaction event. */
  readonly reactions = signal<ReadonlyMap<number, ReactionCounts>>(new Map());
  /** The last seq applied. */
  readonly lastSeq = signal(0);
  /** Set when the server ended the subscription: `removed`, `left`, `project_deleted`. */
  readonly ended = signal<string | null>(null);

  /** Jobs in the order they were submitted. */
  readonly feed = computed(() => [...this.jobs.value.values()].sort((a, b) => a.id - b.id));
  /**
   * Jobs and uploads, oldest first: jobs in submission order, uploads in upload order, the two
   * interleaved by creation time (the server's clock); when times are equal or unreadable, the
   * one whose first event came first goes first.
   */
  readonly timeline = computed((): FeedEntry[] => {
    const jobs = this.feed.value;
    const uploads = [...this.uploads.value.values()].sort((a, b) => a.id - b.id);
    const before = (job: Job, up: Image): boolean => {
      const tj = timeOf(job.created_at);
      const tu = timeOf(up.created_at);
      if (tj !== null && tu !== null && tj !== tu) return tj < tu;
      return (this.firstSeq.get(`j${job.id}`) ?? 0) <= (this.firstSeq.get(`u${up.id}`) ?? 0);
    };
    const out: FeedEntry[] = [];
    let i = 0;
    let k = 0;
    while (i < jobs.length || k < uploads.length) {
      const job = jobs[i];
      const up = uploads[k];
      if (job && (!up || before(job, up))) {
        out.push({ kind: 'job', job });
        i += 1;
      } else if (up) {
        out.push({ kind: 'upload', image: up });
        k += 1;
      }
    }
    return out;
  });
  /** Every image of every finished job, and every upload, by id. */
  readonly images = computed(() => {
    const out = new Map<number, Image>(this.uploads.value);
    for (const job of this.jobs.value.values()) for (const img of job.images) out.set(img.id, img);
    return out;
  });

  /** The seq of the event that first brought each job (`j<id>`) and upload (`u<id>`). */
  private readonly firstSeq = new Map<string, number>();

  constructor(
    private readonly selfId: number,
    private readonly makePreviewUrl: (bytes: Uint8Array, format: string) => string = () => '',
    private readonly revokePreviewUrl: (url: string) => void = () => {},
  ) {}

  /**
   * Applies one durable event (in seq order). Unknown types are skipped, and so is an event at
   * or below the last seq applied (a replay: it would only bring back an older state).
   */
  apply(event: ApiEvent): void {
    if (event.seq <= this.lastSeq.value) return;
    batch(() => {
      this.lastSeq.value = event.seq;
      const job = jobOfEvent(event);
      if (job) {
        this.noteFirst(`j${job.id}`, event.seq);
        return this.applyJob(job);
      }
      const data = event.data as Record<string, unknown>;
      switch (event.type) {
        case 'image.uploaded': {
          const img = imageOfEvent(event);
          if (!img) return;
          this.noteFirst(`u${img.id}`, event.seq);
          const next = new Map(this.uploads.value);
          next.set(img.id, img);
          this.uploads.value = next;
          return;
        }
        case 'project.updated': {
          const p = this.project.value;
          if (p) {
            this.project.value = {
              ...p,
              ...(typeof data.name === 'string' ? { name: data.name } : {}),
              ...(typeof data.description === 'string' ? { description: data.description } : {}),
            };
          }
          return;
        }
        case 'member.added':
        case 'member.joined':
        case 'member.role_changed':
          return this.upsertMember(data, event.ts);
        case 'member.left':
        case 'member.removed': {
          const id = data.user_id;
          this.members.value = this.members.value.filter((m) => m.user_id !== id);
          return;
        }
        case 'reaction.set':
        case 'reaction.clear': {
          if (typeof data.image === 'number' && typeof data.counts === 'object' && data.counts) {
            const next = new Map(this.reactions.value);
            next.set(data.image, data.counts as ReactionCounts);
            this.reactions.value = next;
          }
          return;
        }
      }
    });
  }

  onProgress(job: number, step: number, steps: number): void {
    const known = this.jobs.value.get(job);
    if (known && known.state !== 'queued' && known.state !== 'running') return; // late
    const next = new Map(this.progress.value);
    next.set(job, { step, steps });
    this.progress.value = next;
  }

  onPreview(job: number, bytes: Uint8Array, format: string): void {
    const known = this.jobs.value.get(job);
    if (known && known.state !== 'queued' && known.state !== 'running') return;
    const next = new Map(this.previews.value);
    const old = next.get(job);
    if (old) this.revokePreviewUrl(old);
    next.set(job, this.makePreviewUrl(bytes, format));
    this.previews.value = next;
  }

  /** Drops every preview URL (the room is left). */
  dispose(): void {
    for (const url of this.previews.value.values()) this.revokePreviewUrl(url);
    this.previews.value = new Map();
  }

  /** Whether the caller may submit jobs, cancel and react. */
  readonly canEdit = computed(() => this.role.value === 'editor' || this.role.value === 'owner');

  /** Whether the caller may cancel `job`: its submitter (an editor still) or an owner. */
  canCancel(job: Job): boolean {
    if (job.state !== 'queued' && job.state !== 'running') return false;
    if (this.role.value === 'owner') return true;
    return this.canEdit.value && job.submitted_by === this.selfId;
  }

  /**
   * A queued job's 1-based place in the server's start order: the fair scheduler's `position`
   * as of the job's latest event. Not computed here: the queue takes projects and users in
   * turn, across projects this room cannot see, so no count of this room's jobs matches it.
   */
  placeInLine(job: Job): number | null {
    if (job.state !== 'queued') return null;
    return job.position ?? null;
  }

  /** Two letters for an avatar. */
  initialsOf(userId: number | null | undefined): string {
    if (userId === this.selfId) {
      const me = this.members.value.find((x) => x.user_id === userId);
      if (me) return me.username.slice(0, 2).toUpperCase();
    }
    return this.usernameOf(userId).slice(0, 2).toUpperCase();
  }

  /** The member's username, also for the caller (where usernameOf says "you"). */
  nameOf(userId: number | null | undefined): string {
    if (userId === null || userId === undefined) return 'a former member';
    const m = this.members.value.find((x) => x.user_id === userId);
    if (m) return m.username;
    const p = this.presence.value.find((x) => x.user === userId);
    return p ? p.username : `user ${userId}`;
  }

  usernameOf(userId: number | null | undefined): string {
    if (userId === null || userId === undefined) return 'a former member';
    if (userId === this.selfId) return 'you';
    return this.nameOf(userId);
  }

  private noteFirst(key: string, seq: number): void {
    const seen = this.firstSeq.get(key);
    if (seen === undefined || seq < seen) this.firstSeq.set(key, seq);
  }

  private applyJob(job: Job): void {
    const jobs = new Map(this.jobs.value);
    jobs.set(job.id, job);
    this.jobs.value = jobs;
    if (job.state !== 'queued' && job.state !== 'running') {
      if (this.progress.value.has(job.id)) {
        const p = new Map(this.progress.value);
        p.delete(job.id);
        this.progress.value = p;
      }
      const url = this.previews.value.get(job.id);
      if (url) {
        this.revokePreviewUrl(url);
        const v = new Map(this.previews.value);
        v.delete(job.id);
        this.previews.value = v;
      }
    }
  }

  private upsertMember(data: Record<string, unknown>, ts: string): void {
    if (typeof data.user_id !== 'number' || typeof data.role !== 'string') return;
    const role = data.role as Role;
    const members = this.members.value.filter((m) => m.user_id !== data.user_id);
    const old = this.members.value.find((m) => m.user_id === data.user_id);
    members.push({
      user_id: data.user_id,
      username: typeof data.username === 'string' ? data.username : (old?.username ?? `user ${data.user_id}`),
      role,
      added_at: old?.added_at ?? ts,
    });
    members.sort((a, b) => a.username.localeCompare(b.username));
    this.members.value = members;
    if (data.user_id === this.selfId) this.role.value = role;
  }
}
