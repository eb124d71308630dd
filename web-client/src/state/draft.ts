// The prompt box's contents, shared with the image dialog (Remix and Reuse fill it in).
import { signal } from '@preact/signals';
import type { GenerationMode, ImageDetail, JobSubmit, Model } from '../api/models';

export interface Draft {
  model: string;
  prompt: string;
  negative_prompt: string;
  width: number;
  height: number;
  steps: number;
  guidance: number;
  seed: number;
  count: number;
  sampler: string;
  mode: GenerationMode;
  strength: number;
  /** Remix: the image whose structure is kept. */
  parent: { id: number; thumb: string } | null;
}

export function draftFor(model: Model, prompt = ''): Draft {
  const p = model.params;
  return {
    model: model.id,
    prompt,
    negative_prompt: '',
    width: p.width.default,
    height: p.height.default,
    steps: p.steps.default,
    guidance: p.guidance.default,
    seed: -1,
    count: p.count.default,
    sampler: p.default_sampler,
    mode: 'txt2img',
    strength: p.strength.default,
    parent: null,
  };
}

/** The body of job.submit for a draft (a remix keeps the parent's size). */
export function submission(d: Draft): JobSubmit {
  const base: JobSubmit = {
    model: d.model,
    prompt: d.prompt,
    steps: d.steps,
    guidance: d.guidance,
    seed: d.seed,
    count: d.count,
    sampler: d.sampler,
    mode: 'txt2img',
    priority: 0,
  };
  if (d.negative_prompt.trim() !== '') base.negative_prompt = d.negative_prompt;
  if (d.parent) return { ...base, mode: d.mode, parent_image_id: d.parent.id, strength: d.strength };
  return { ...base, width: d.width, height: d.height };
}

/** Fills the draft from an image: its prompt and settings, optionally its seed. */
export function reuse(d: Draft, img: ImageDetail, withSeed: boolean): Draft {
  return {
    ...d,
    model: img.model,
    prompt: img.prompt,
    negative_prompt: img.negative_prompt,
    width: img.width,
    height: img.height,
    steps: img.steps,
    guidance: img.guidance,
    sampler: img.sampler,
    seed: withSeed ? img.seed : -1,
    mode: 'txt2img',
    parent: null,
  };
}

export const draft = signal<Draft | null>(null);
