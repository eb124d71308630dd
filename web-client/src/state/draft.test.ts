// The prompt box's draft: defaults from the model's ranges, what job.submit gets, Reuse.
import { describe, expect, it } from 'vitest';
import type { ImageDetail, Model } from '../api/models';
import { draftFor, reuse, submission } from './draft';

const model: Model = {
  id: 'cppn',
  kind: 'builtin',
  description: 'patterns',
  params: {
    width: { min: 64, max: 2048, default: 512, multiple_of: 8 },
    height: { min: 64, max: 2048, default: 384, multiple_of: 8 },
    steps: { min: 1, max: 50, default: 12 },
    count: { min: 1, max: 4, default: 1 },
    guidance: { min: 0, max: 20, default: 7 },
    strength: { min: 0, max: 1, default: 0.6 },
    seed: { min: -1, max: 2 ** 53 - 1, default: -1 },
    samplers: ['smooth', 'contour'],
    default_sampler: 'smooth',
    modes: ['txt2img', 'variation', 'remix', 'upscale'],
    upscale_factors: [2],
  },
};

describe('draft', () => {
  it('starts from the model defaults and submits a txt2img with its size', () => {
    const d = draftFor(model, 'dunes at noon');
    expect(d).toMatchObject({ width: 512, height: 384, steps: 12, sampler: 'smooth', seed: -1, mode: 'txt2img' });
    const body = submission(d);
    expect(body).toMatchObject({ model: 'cppn', prompt: 'dunes at noon', width: 512, height: 384, mode: 'txt2img' });
    expect(body).not.toHaveProperty('parent_image_id');
    expect(body).not.toHaveProperty('negative_prompt');
  });

  it('a remix names its parent and strength and leaves the size to the parent', () => {
    const d = { ...draftFor(model, 'at night'), mode: 'remix' as const, parent: { id: 9, thumb: '/t' }, strength: 0.4 };
    const body = submission(d);
    expect(body).toMatchObject({ mode: 'remix', parent_image_id: 9, strength: 0.4 });
    expect(body).not.toHaveProperty('width');
    expect(body).not.toHaveProperty('height');
  });

  it('reuse copies prompt and settings, and the seed only when asked', () => {
    const img = {
      id: 9, model: 'cppn', prompt: 'p', negative_prompt: 'n', width: 128, height: 64, steps: 5,
      guidance: 3, sampler: 'contour', seed: 1234,
    } as ImageDetail;
    const base = draftFor(model);
    expect(reuse(base, img, false)).toMatchObject({ prompt: 'p', negative_prompt: 'n', width: 128, height: 64, steps: 5, sampler: 'contour', seed: -1, parent: null });
    expect(reuse(base, img, true).seed).toBe(1234);
  });
});
