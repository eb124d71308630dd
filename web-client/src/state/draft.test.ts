// The prompt box's draft: defaults from the model's ranges, what job.submit gets, Reuse,
// LoRAs kept per model, SDXL size conditioning, and the checks made before sending.
import { describe, expect, it } from 'vitest';
import type { ImageDetail, Model } from '../api/models';
import { addLora, draftFor, removeLora, reuse, setLora, submission, switchModel, validate, type Draft } from './draft';

const params = (w: number, h: number, steps: number, guidance: number, samplers: string[]): Model['params'] => ({
  width: { min: 64, max: 2048, default: w, multiple_of: 8 },
  height: { min: 64, max: 2048, default: h, multiple_of: 8 },
  steps: { min: 1, max: 50, default: steps },
  count: { min: 1, max: 4, default: 1 },
  guidance: { min: 0, max: 20, default: guidance },
  strength: { min: 0, max: 1, default: 0.6 },
  seed: { min: -1, max: 2 ** 53 - 1, default: -1 },
  samplers,
  default_sampler: samplers[0] ?? '',
  modes: ['txt2img', 'variation', 'remix', 'upscale'],
  upscale_factors: [2],
});

const model: Model = {
  id: 'cppn',
  kind: 'builtin',
  description: 'patterns',
  params: params(512, 384, 12, 7, ['smooth', 'contour']),
  family: null,
  hash: null,
  available: true,
  unavailable_reason: null,
  native_width: 512,
  native_height: 384,
  size_conditioning: false,
  max_loras: 0,
  loras: [],
};

const sdxl: Model = {
  id: 'sdxl-base',
  kind: 'sd',
  description: 'SDXL',
  params: params(1024, 1024, 30, 5, ['euler_a', 'dpmpp_2m']),
  family: 'sdxl',
  hash: 'a'.repeat(64),
  available: true,
  unavailable_reason: null,
  native_width: 1024,
  native_height: 1024,
  size_conditioning: true,
  max_loras: 2,
  loras: ['ink', 'film', 'neon'],
};

const sdxlTurbo: Model = { ...sdxl, id: 'sdxl-turbo', params: params(512, 512, 1, 0, ['euler']), max_loras: 1, loras: ['film', 'neon'] };

const sd15: Model = {
  ...sdxl,
  id: 'sd15',
  family: 'sd1',
  params: params(512, 512, 25, 7.5, ['ddim']),
  native_width: 512,
  native_height: 512,
  size_conditioning: false,
  max_loras: 5,
  loras: ['watercolor'],
};

describe('draft', () => {
  it('starts from the model defaults and submits a txt2img with its size', () => {
    const d = draftFor(model, 'dunes at noon');
    expect(d).toMatchObject({ width: 512, height: 384, steps: 12, sampler: 'smooth', seed: -1, mode: 'txt2img', loras: [] });
    const body = submission(d);
    expect(body).toMatchObject({ model: 'cppn', prompt: 'dunes at noon', width: 512, height: 384, mode: 'txt2img' });
    expect(body).not.toHaveProperty('parent_image_id');
    expect(body).not.toHaveProperty('negative_prompt');
    expect(body).not.toHaveProperty('loras');
    expect(body).not.toHaveProperty('original_size');
    expect(body).not.toHaveProperty('target_size');
    expect(body).not.toHaveProperty('crop_top_left');
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
    expect(reuse(base, img, false)).toMatchObject({ prompt: 'p', negative_prompt: 'n', width: 128, height: 64, steps: 5, sampler: 'contour', seed: -1, parent: null, loras: [] });
    expect(reuse(base, img, true).seed).toBe(1234);
  });

  it('reuse copies the LoRAs and keeps only size conditioning that differs from the defaults', () => {
    const img = {
      id: 3, model: 'sdxl-base', prompt: 'p', negative_prompt: '', width: 1024, height: 768, steps: 30,
      guidance: 5, sampler: 'euler_a', seed: 1,
      loras: [{ name: 'ink', weight: 0.7, hash: 'b'.repeat(64) }],
      original_size: [1024, 768], target_size: [2048, 1536], crop_top_left: [0, 0],
    } as ImageDetail;
    const d = reuse(draftFor(sdxl), img, false);
    expect(d.loras).toEqual([{ name: 'ink', weight: 0.7 }]);
    expect(d.conditioning).toEqual({ original_size: [null, null], target_size: [2048, 1536], crop_top_left: [null, null] });
    expect(submission(d)).toMatchObject({ loras: [{ name: 'ink', weight: 0.7 }], target_size: [2048, 1536] });
    expect(submission(d)).not.toHaveProperty('original_size');
  });
});

describe('choosing a model', () => {
  const chosen = (d: Draft, ...names: string[]): Draft => ({ ...d, loras: names.map((name) => ({ name, weight: 0.5 })) });

  it('applies the new model defaults and keeps the prompts', () => {
    const d = { ...draftFor(model, 'a harbour'), negative_prompt: 'blur', width: 256, steps: 3, guidance: 1 };
    const next = switchModel(d, sdxl);
    expect(next).toMatchObject({
      model: 'sdxl-base', prompt: 'a harbour', negative_prompt: 'blur',
      width: 1024, height: 1024, steps: 30, guidance: 5, sampler: 'euler_a', parent: null, mode: 'txt2img',
    });
  });

  it('keeps only the LoRAs that fit the new model, up to its limit', () => {
    const d = chosen(draftFor(sdxl), 'ink', 'film');
    expect(switchModel(d, sdxlTurbo).loras).toEqual([{ name: 'film', weight: 0.5 }]);
    expect(switchModel(d, sd15).loras).toEqual([]);
    expect(switchModel(d, model).loras).toEqual([]);
    expect(switchModel(chosen(draftFor(sdxl), 'film', 'neon'), sdxlTurbo).loras).toEqual([{ name: 'film', weight: 0.5 }]);
  });

  it('keeps size conditioning only for models that take it', () => {
    const d = { ...draftFor(sdxl), conditioning: { original_size: [2048, 2048], target_size: [null, null], crop_top_left: [16, 0] } } as Draft;
    expect(switchModel(d, sdxlTurbo).conditioning).toEqual(d.conditioning);
    expect(switchModel(d, sd15).conditioning).toEqual({ original_size: [null, null], target_size: [null, null], crop_top_left: [null, null] });
  });
});

describe('LoRAs in the draft', () => {
  it('adds the next unused LoRA at weight 1, up to max_loras', () => {
    let d = addLora(draftFor(sdxl), sdxl);
    expect(d.loras).toEqual([{ name: 'ink', weight: 1 }]);
    d = addLora(d, sdxl);
    expect(d.loras.map((l) => l.name)).toEqual(['ink', 'film']);
    expect(addLora(d, sdxl)).toBe(d); // max_loras is 2
    expect(addLora(draftFor(model), model).loras).toEqual([]); // takes none
  });

  it('edits and removes one row', () => {
    const d = addLora(addLora(draftFor(sdxl), sdxl), sdxl);
    const edited = setLora(d, 1, { weight: -0.35, name: 'neon' });
    expect(edited.loras).toEqual([{ name: 'ink', weight: 1 }, { name: 'neon', weight: -0.35 }]);
    expect(removeLora(edited, 0).loras).toEqual([{ name: 'neon', weight: -0.35 }]);
  });

  it('are submitted as loras with their weights', () => {
    const d = setLora(addLora({ ...draftFor(sdxl), prompt: 'x' }, sdxl), 0, { weight: 0.8 });
    expect(submission(d).loras).toEqual([{ name: 'ink', weight: 0.8 }]);
  });
});

describe('validate', () => {
  const base = { ...draftFor(sdxl), prompt: 'x' };

  it('accepts the defaults', () => {
    expect(validate(base, sdxl)).toEqual([]);
    expect(validate(draftFor(model, 'x'), model)).toEqual([]);
    expect(validate(base, undefined)).toEqual([]);
  });

  it('names the LoRA field at fault as the server does', () => {
    const d: Draft = { ...base, loras: [{ name: 'ink', weight: 5 }, { name: 'watercolor', weight: 1 }, { name: 'ink', weight: Number.NaN }] };
    expect(validate(d, sdxl)).toEqual([
      { field: 'loras', message: 'At most 2 LoRAs for this model.' },
      { field: 'loras[0].weight', message: 'Weight from -4 to 4.' },
      { field: 'loras[1].name', message: 'LoRA “watercolor” cannot be used with sdxl-base.' },
      { field: 'loras[2].name', message: 'LoRA “ink” is chosen twice.' },
      { field: 'loras[2].weight', message: 'Weight from -4 to 4.' },
    ]);
    expect(validate({ ...base, loras: [{ name: 'ink', weight: -4 }] }, sdxl)).toEqual([]);
    expect(validate({ ...base, loras: [{ name: 'ink', weight: 1 }] }, model)).toEqual([{ field: 'loras', message: 'Model cppn takes no LoRAs.' }]);
  });

  it('checks size conditioning pairs and ranges, only for models that take it', () => {
    const d = { ...base, conditioning: { original_size: [1024, null], target_size: [4, 1024], crop_top_left: [0, 12.5] } } as Draft;
    expect(validate(d, sdxl).map((p) => p.field)).toEqual(['original_size', 'target_size', 'crop_top_left']);
    expect(validate(d, sdxl)[0]?.message).toMatch(/both width and height/);
    const ok = { ...base, conditioning: { original_size: [4096, 4096], target_size: [null, null], crop_top_left: [0, 128] } } as Draft;
    expect(validate(ok, sdxl)).toEqual([]);
    expect(submission(ok)).toMatchObject({ original_size: [4096, 4096], crop_top_left: [0, 128] });
    expect(submission(ok)).not.toHaveProperty('target_size');
  });

  it('refuses an unavailable model with its reason', () => {
    const broken: Model = { ...sd15, id: 'broken', available: false, unavailable_reason: 'truncated file' };
    expect(validate({ ...draftFor(broken), prompt: 'x' }, broken)).toEqual([
      { field: 'model', message: 'This model is unavailable: truncated file' },
    ]);
  });
});
