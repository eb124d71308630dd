// The prompt box's draft: defaults from the model's ranges, what job.submit gets, Reuse,
// LoRAs kept per model, SDXL size conditioning, and the checks made before sending.
import { describe, expect, it } from 'vitest';
import type { ImageDetail, Model } from '../api/models';
import {
  addLora,
  draftFor,
  editDraftFor,
  editModels,
  editSubmission,
  removeLora,
  reuse,
  setLora,
  submission,
  switchModel,
  validate,
  validateEdit,
  type Draft,
  type EditDraft,
} from './draft';

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

describe('edits (inpaint and outpaint)', () => {
  const withEdits = (m: Model): Model => ({ ...m, params: { ...m.params, modes: [...m.params.modes, 'inpaint', 'outpaint'] } });
  const cppn = withEdits(model);
  const xl = withEdits(sdxl);
  const offline: Model = { ...withEdits(sd15), id: 'offline', available: false, unavailable_reason: 'missing' };
  const models = [model, offline, xl, cppn];

  it('offers the available models that list the mode, preferring the prompt box one', () => {
    expect(editModels(models, 'inpaint').map((m) => m.id)).toEqual(['sdxl-base', 'cppn']);
    expect(editDraftFor(models, 'inpaint', 'a cat', ['cppn', 'sdxl-base'])?.model).toBe('cppn');
    expect(editDraftFor(models, 'inpaint', 'a cat', ['offline', undefined])?.model).toBe('sdxl-base');
    expect(editDraftFor([model], 'inpaint', 'a cat', ['cppn'])).toBeNull();
    // An inpaint starts at the model's default strength, an outpaint at its maximum.
    expect(editDraftFor(models, 'inpaint', 'a cat', ['cppn'])).toMatchObject({ strength: 0.6, mask_blur: 4, masked_only: false, prompt: 'a cat' });
    expect(editDraftFor(models, 'outpaint', '', ['cppn'])?.strength).toBe(1);
  });

  it('submits an inpaint with its mask, blur and area, and no size', () => {
    const e = { ...(editDraftFor(models, 'inpaint', 'a red door', ['cppn']) as EditDraft), masked_only: true, strength: 0.8 };
    const body = editSubmission(e, 41, 42, null);
    expect(body).toEqual({
      model: 'cppn', prompt: 'a red door', seed: -1, mode: 'inpaint', priority: 0,
      parent_image_id: 41, mask_image_id: 42, strength: 0.8, mask_blur: 4, inpaint_area: 'masked',
    });
  });

  it('takes the prompt box settings when it has the same model, and never its size', () => {
    const box: Draft = {
      ...draftFor(xl, 'ignored'), steps: 9, seed: 77, negative_prompt: 'fog', loras: [{ name: 'ink', weight: 0.5 }],
      conditioning: { original_size: [2048, 2048], target_size: [null, null], crop_top_left: [null, null] },
      mode: 'remix', parent: { id: 3, thumb: '/t' },
    };
    const e = editDraftFor(models, 'outpaint', 'more sea', ['sdxl-base']) as EditDraft;
    const body = editSubmission({ ...e, extend: { left: 0, right: 256, top: 0, bottom: 64 } }, 7, null, box);
    expect(body).toMatchObject({
      model: 'sdxl-base', prompt: 'more sea', steps: 9, seed: 77, negative_prompt: 'fog', loras: [{ name: 'ink', weight: 0.5 }],
      mode: 'outpaint', parent_image_id: 7, strength: 1, mask_blur: 4, extend: { left: 0, right: 256, top: 0, bottom: 64 },
    });
    for (const key of ['width', 'height', 'original_size', 'mask_image_id', 'inpaint_area']) expect(body).not.toHaveProperty(key);
    // Another model in the prompt box: the edit's model with its defaults.
    expect(editSubmission({ ...e, model: 'cppn' }, 7, null, box)).not.toHaveProperty('steps');
  });

  it('checks the prompt, strength, blur and extension before sending, naming the server fields', () => {
    const parent = { width: 8000, height: 600 };
    const e = editDraftFor(models, 'outpaint', 'x', ['cppn']) as EditDraft;
    expect(validateEdit({ ...e, extend: { left: 8, right: 0, top: 0, bottom: 0 } }, cppn, parent)).toEqual([]);
    expect(validateEdit(e, cppn, parent)).toEqual([{ field: 'extend', message: 'Add pixels on at least one side.' }]);
    expect(validateEdit({ ...e, extend: { left: 100, right: 100, top: 0, bottom: 0 } }, cppn, parent)[0]?.message).toMatch(/at most 8192/);
    expect(validateEdit({ ...e, extend: { left: 2049, right: 0, top: 0, bottom: 0 } }, cppn, parent)[0]?.field).toBe('extend');
    const bad = { ...e, mode: 'inpaint' as const, prompt: ' ', strength: 1.5, mask_blur: 65 };
    expect(validateEdit(bad, cppn, parent).map((p) => p.field)).toEqual(['prompt', 'strength', 'mask_blur']);
    expect(validateEdit({ ...bad, mask_blur: 2.5 }, cppn, parent).map((p) => p.field)).toContain('mask_blur');
    expect(validateEdit({ ...e, prompt: 'x' }, undefined, parent)).toEqual([{ field: 'model', message: 'No model here can outpaint.' }]);
  });
});
