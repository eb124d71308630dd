// The room feed: every job and every upload of every member, newest first, live.
import { useState } from 'preact/hooks';
import type { Image, Job } from '../api/models';
import type { LiveClient } from '../live/live_client';
import { lineageOf } from '../state/lineage';
import type { FeedEntry, RoomStore } from '../state/room';
import { describeError } from './FieldError';

interface Props {
  store: RoomStore;
  client: LiveClient;
  selfId: number;
  onOpenImage: (id: number) => void;
}

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${n % 10 > 3 ? 'th' : s}`;
}

export function Feed({ store, client, selfId, onOpenImage }: Props) {
  const [filter, setFilter] = useState<'everyone' | 'mine'>('everyone');
  const mine = (e: FeedEntry) => (e.kind === 'job' ? e.job.submitted_by : e.image.created_by) === selfId;
  const entries = store.timeline.value.filter((e) => filter === 'everyone' || mine(e)).reverse();
  return (
    <section class="feed" aria-label="Room feed">
      <div class="feed-head">
        <h2>Feed</h2>
        <fieldset class="filter">
          <legend class="sr-only">Show jobs and uploads of</legend>
          {(['everyone', 'mine'] as const).map((f) => (
            <label key={f}>
              <input type="radio" name="feed-filter" checked={filter === f} onChange={() => setFilter(f)} />
              {f === 'everyone' ? 'Everyone' : 'Mine'}
            </label>
          ))}
        </fieldset>
      </div>
      {entries.length === 0 && (
        <p class="muted">
          {filter === 'mine'
            ? 'You have not generated or uploaded anything here yet.'
            : 'Nothing here yet. Write a prompt to start, or bring an image in.'}
        </p>
      )}
      <ol class="jobs">
        {entries.map((e) =>
          e.kind === 'job' ? (
            <JobCard key={`j${e.job.id}`} job={e.job} store={store} client={client} onOpenImage={onOpenImage} />
          ) : (
            <UploadCard key={`u${e.image.id}`} image={e.image} store={store} onOpenImage={onOpenImage} />
          ),
        )}
      </ol>
    </section>
  );
}

function JobCard({ job, store, client, onOpenImage }: { job: Job; store: RoomStore; client: LiveClient; onOpenImage: (id: number) => void }) {
  const [cancelError, setCancelError] = useState<string | null>(null);
  const progress = store.progress.value.get(job.id);
  const preview = store.previews.value.get(job.id);
  const who = store.usernameOf(job.submitted_by);
  const parent = job.parent_image_id !== null ? store.images.value.get(job.parent_image_id) : undefined;
  const lineage = lineageOf(job, parent, store);
  const mask = job.mode === 'inpaint' ? (job.mask_image_id ?? null) : null;
  const place = store.placeInLine(job);
  const loras = job.loras ?? [];
  const warnings = job.warnings ?? [];

  let status: string;
  switch (job.state) {
    case 'queued':
      status = place ? `Queued · ${ordinal(place)} in line` : 'Queued';
      break;
    case 'running': {
      const step = progress ? progress.step : job.progress.step;
      const steps = progress ? progress.steps : job.progress.steps;
      status = `Running · step ${step} of ${steps}`;
      break;
    }
    case 'done':
      status = 'Done';
      break;
    case 'failed':
      status = `Failed: ${job.error ?? 'no reason given'}`;
      break;
    case 'cancelled':
      status = 'Cancelled';
      break;
  }
  const step = progress?.step ?? job.progress.step;
  const steps = progress?.steps ?? job.progress.steps;

  const cancel = async () => {
    setCancelError(null);
    try {
      await client.command('job.cancel', { job: job.id });
    } catch (err) {
      setCancelError(describeError(err));
    }
  };

  return (
    <li class={`job job-${job.state}`} data-job={job.id} aria-label={`${who}: ${job.prompt}`}>
      <div class="job-head">
        <span class="avatar" aria-hidden="true">
          {store.initialsOf(job.submitted_by)}
        </span>
        <div class="job-meta">
          <p class="job-prompt">{job.prompt}</p>
          <p class="muted small">
            by {who}
            {lineage && (
              <>
                {' · '}
                <span data-testid="lineage">
                  {lineage.words}{' '}
                  <button type="button" class="link" onClick={() => onOpenImage(lineage.parentId)}>
                    {lineage.parentLabel}
                  </button>
                  {lineage.by !== null ? ` by ${lineage.by}` : ''}
                </span>
              </>
            )}
            {mask !== null && (
              <>
                {' · mask '}
                <button type="button" class="link" aria-label={`mask image #${mask}`} onClick={() => onOpenImage(mask)}>
                  #{mask}
                </button>
              </>
            )}
            {' · '}
            {job.width}×{job.height}, {job.steps} steps, seed {job.seed}
            {loras.length > 0 && `, LoRA ${loras.map((l) => `${l.name} ${l.weight}`).join(', ')}`}
          </p>
        </div>
      </div>
      <p class={`job-status status-${job.state}`} data-testid="job-status">
        {status}
      </p>
      {warnings.length > 0 && (
        <ul class="job-warnings" aria-label="Warnings">
          {warnings.map((w, i) => (
            <li key={i}>{w}</li>
          ))}
        </ul>
      )}
      {job.state === 'running' && (
        <progress max={steps} value={step} aria-label={`Progress of “${job.prompt}”`} />
      )}
      {job.state === 'running' && preview && (
        <img class="preview" src={preview} alt={`Live preview of: ${job.prompt}`} width={128} height={128} />
      )}
      {job.images.length > 0 && (
        <div class="thumbs">
          {job.images.map((img) => (
            <button key={img.id} type="button" class="thumb" onClick={() => onOpenImage(img.id)} data-image={img.id}>
              <img src={img.thumb_url} alt={job.prompt} loading="lazy" width={160} height={160} />
            </button>
          ))}
        </div>
      )}
      {store.canCancel(job) && (
        <button type="button" class="secondary small" onClick={() => void cancel()}>
          Cancel
        </button>
      )}
      {cancelError && (
        <p class="field-error" role="alert">
          {cancelError}
        </p>
      )}
    </li>
  );
}

/** An image someone brought in: its thumbnail, who uploaded it and its file name. */
function UploadCard({ image, store, onOpenImage }: { image: Image; store: RoomStore; onOpenImage: (id: number) => void }) {
  const who = store.nameOf(image.created_by);
  const name = image.original_name ?? null;
  return (
    <li class="upload" data-testid="feed-upload" data-image-id={image.id} aria-label={`Upload #${image.id} by ${who}`}>
      <button type="button" class="thumb" onClick={() => onOpenImage(image.id)} data-image={image.id}>
        <img
          src={image.thumb_url}
          alt={name ? `Upload ${name} by ${who}` : `Upload #${image.id} by ${who}`}
          loading="lazy"
          width={96}
          height={96}
        />
      </button>
      <span class="avatar" aria-hidden="true">
        {store.initialsOf(image.created_by)}
      </span>
      <div class="upload-meta">
        <p class="upload-by">Uploaded by {who}</p>
        <p class="muted small">
          {name && <span class="upload-name">{name}</span>}
          {name && ' · '}
          upload #{image.id}, {image.width}×{image.height}
        </p>
      </div>
    </li>
  );
}
