// The lineage line of a job card, for every mode and every kind of parent.
import { describe, expect, it } from 'vitest';
import type { GenerationMode, Image, Job } from '../api/models';
import { lineageOf, lineageText } from './lineage';
import { RoomStore } from './room';

const job = (mode: GenerationMode, parent: number | null): Job =>
  ({ id: 1, mode, parent_image_id: parent, submitted_by: 8 }) as Job;
const img = (id: number, by: number | null, source: Image['source']): Image =>
  ({ id, created_by: by, source, job_id: source === 'upload' ? null : 3 }) as Image;

function room(): RoomStore {
  const s = new RoomStore(7);
  s.members.value = [
    { user_id: 7, username: 'alice', role: 'owner', added_at: '' },
    { user_id: 8, username: 'bob', role: 'editor', added_at: '' },
  ];
  return s;
}

const text = (j: Job, parent: Image | undefined, s = room()) => {
  const l = lineageOf(j, parent, s);
  return l && lineageText(l);
};

describe('lineage', () => {
  const words = { variation: 'Variation', remix: 'Remix', upscale: 'Upscale', inpaint: 'Inpaint', outpaint: 'Outpaint' };

  it('names an uploaded parent “upload #n” with its uploader’s username, for every mode', () => {
    for (const [mode, word] of Object.entries(words)) {
      const m = mode as GenerationMode;
      // The same words on the uploader's screen and on everyone else's.
      expect(text(job(m, 31), img(31, 7, 'upload'))).toBe(`${word} of upload #31 by alice`);
      expect(text(job(m, 31), img(31, 8, 'upload'))).toBe(`${word} of upload #31 by bob`);
    }
  });

  it('keeps “image #n” and “you” for generated parents, for every mode', () => {
    for (const [mode, word] of Object.entries(words)) {
      const m = mode as GenerationMode;
      expect(text(job(m, 12), img(12, 8, 'generated'))).toBe(`${word} of image #12 by bob`);
      expect(text(job(m, 12), img(12, 7, 'generated'))).toBe(`${word} of image #12 by you`);
      expect(text(job(m, 12), img(12, null, 'generated'))).toBe(`${word} of image #12 by a former member`);
    }
  });

  it('says only the id of a parent the room does not know, and nothing for txt2img', () => {
    expect(text(job('inpaint', 5), undefined)).toBe('Inpaint of image #5');
    expect(lineageOf(job('txt2img', null), undefined, room())).toBeNull();
    expect(lineageOf(job('variation', null), undefined, room())).toBeNull();
  });

  it('finds an uploaded parent among the room’s images', () => {
    const s = room();
    const up = { ...img(40, 7, 'upload'), project_id: 1, original_name: 'x.png' } as Image;
    s.apply({ seq: 1, type: 'image.uploaded', ts: '', actor: 7, data: { image: up } });
    expect(text(job('outpaint', 40), s.images.value.get(40), s)).toBe('Outpaint of upload #40 by alice');
  });
});
