// The room's uploads in flight: files dropped, pasted or picked go up one after another (a
// dozen dropped photos do not race each other for the server's rate limit or the link), and
// each failure stays on screen, with its file, until dismissed or retried.
// Also: the prompt box draft that remixes a freshly uploaded image (the sketch pad's result).
import { signal } from '@preact/signals';
import { isApiError } from '../api/client';
import type { Image, Model } from '../api/models';
import { uploadProblem } from '../api/uploads';
import { describeError } from '../components/FieldError';
import { draftFor, switchModel, type Draft } from './draft';
import { isAvailable } from './models';

export interface UploadItem {
  /** Unique within the queue. */
  key: number;
  name: string;
  file: Blob;
}

export interface UploadFailure extends UploadItem {
  message: string;
  /** Whether trying again may help (no answer, busy or rate-limited server). */
  retryable: boolean;
}

function nameOf(file: Blob): string {
  return typeof File !== 'undefined' && file instanceof File && file.name !== '' ? file.name : 'image';
}

/** "cat.png: too large: max 20 MB". */
export function uploadFailureMessage(name: string, err: unknown): string {
  return `${name}: ${uploadProblem(err) ?? describeError(err)}`;
}

function retryable(err: unknown): boolean {
  if (!isApiError(err)) return false;
  return (err.status === 0 && err.code !== 'aborted') || err.status === 429 || err.status >= 500;
}

export class UploadQueue {
  /** Files not started yet, in order. */
  readonly waiting = signal<readonly UploadItem[]>([]);
  /** The file being sent. */
  readonly current = signal<UploadItem | null>(null);
  readonly failures = signal<readonly UploadFailure[]>([]);

  private nextKey = 1;
  private running = false;
  private pumping: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(
    private readonly send: (file: Blob) => Promise<Image>,
    private readonly onUploaded: (image: Image) => void = () => {},
  ) {}

  /** Queues `files` after those already waiting. */
  add(files: Iterable<Blob>): void {
    if (this.disposed) return;
    const items = [...files].map((file) => ({ key: this.nextKey++, name: nameOf(file), file }));
    if (items.length === 0) return;
    this.waiting.value = [...this.waiting.value, ...items];
    if (!this.running) {
      this.running = true;
      this.pumping = this.pump();
    }
  }

  /** Queues a failed file again (it leaves the failures). */
  retry(key: number): void {
    const failed = this.failures.value.find((f) => f.key === key);
    if (!failed) return;
    this.dismiss(key);
    this.add([failed.file]);
  }

  dismiss(key: number): void {
    this.failures.value = this.failures.value.filter((f) => f.key !== key);
  }

  /** Resolves once nothing is waiting or being sent. */
  async idle(): Promise<void> {
    while (this.running) await this.pumping;
  }

  /** Drops what is waiting; the file being sent finishes, unreported (the room was left). */
  dispose(): void {
    this.disposed = true;
    this.waiting.value = [];
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const [next, ...rest] = this.waiting.value;
        if (!next || this.disposed) return;
        this.waiting.value = rest;
        this.current.value = next;
        try {
          const image = await this.send(next.file);
          if (!this.disposed) this.onUploaded(image);
        } catch (err) {
          if (!this.disposed) {
            const failure = { ...next, message: uploadFailureMessage(next.name, err), retryable: retryable(err) };
            this.failures.value = [...this.failures.value, failure];
          }
        } finally {
          this.current.value = null;
        }
      }
    } finally {
      // In the same step as the empty check above, so a file added from now on starts a pump.
      this.running = false;
    }
  }
}

/**
 * The draft that remixes `image` (its structure kept, the prompt changing it): the current
 * draft's model when it remixes, else the first usable model that does; null when none does.
 */
export function remixDraft(current: Draft | null, image: Image, models: readonly Model[]): Draft | null {
  const remixes = (m: Model) => isAvailable(m) && (m.params.modes as readonly string[]).includes('remix');
  const mine = models.find((m) => m.id === current?.model);
  const model = mine && remixes(mine) ? mine : models.find(remixes);
  if (!model) return null;
  const base = current ? (current.model === model.id ? current : switchModel(current, model)) : draftFor(model);
  return {
    ...base,
    mode: 'remix',
    parent: { id: image.id, thumb: image.thumb_url },
    strength: model.params.strength.default,
  };
}
