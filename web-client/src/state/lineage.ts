// The line a job card shows about the image a job started from: "Variation of image #12 by
// bob", "Inpaint of upload #31 by alice". An upload is named by its uploader's username (the
// same words on every member's screen); a generated parent keeps the room's usual "you" for the
// caller's own images.
import type { GenerationMode, Image, Job } from '../api/models';
import type { RoomStore } from './room';

const MODE_WORDS: Record<Exclude<GenerationMode, 'txt2img'>, string> = {
  variation: 'Variation of',
  remix: 'Remix of',
  upscale: 'Upscale of',
  inpaint: 'Inpaint of',
  outpaint: 'Outpaint of',
};

export interface Lineage {
  /** "Inpaint of". */
  words: string;
  parentId: number;
  /** "upload #31" or "image #12". */
  parentLabel: string;
  /** Who made the parent; null when the room does not know the parent. */
  by: string | null;
}

type Names = Pick<RoomStore, 'usernameOf' | 'nameOf'>;

/** The lineage of `job` whose parent is `parent` (undefined: not known here); null for txt2img. */
export function lineageOf(job: Job, parent: Image | undefined, names: Names): Lineage | null {
  if (job.mode === 'txt2img' || job.parent_image_id === null) return null;
  const upload = parent?.source === 'upload';
  return {
    words: MODE_WORDS[job.mode],
    parentId: job.parent_image_id,
    parentLabel: `${upload ? 'upload' : 'image'} #${job.parent_image_id}`,
    by: parent ? (upload ? names.nameOf(parent.created_by) : names.usernameOf(parent.created_by)) : null,
  };
}

/** The line as text, as the job card shows it. */
export function lineageText(l: Lineage): string {
  return `${l.words} ${l.parentLabel}${l.by !== null ? ` by ${l.by}` : ''}`;
}
