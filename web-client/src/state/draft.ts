// The prompt box's contents, shared with the image dialog (Remix and Reuse fill it in).
import { signal } from '@preact/signals';
import type { GenerationMode, ImageDetail, JobSubmit, Model, SizePair } from '../api/models';
import {
  isAvailable,
  LORA_WEIGHT_DEFAULT,
  LORA_WEIGHT_MAX,
  LORA_WEIGHT_MIN,
  loraFits,
  lorasOf,
  maxLoras,
  takesSizeConditioning,
  unavailableReason,
} from './models';

/** A LoRA chosen in the prompt box. */
export interface DraftLora {
  name: string;
  weight: number;
}

/** Two optional numbers of an input pair; null is an empty field (the server's default). */
export type OptPair = [number | null, number | null];

/** SDXL's size conditioning as typed: empty pairs mean the defaults (output size, no crop). */
export interface Conditioning {
  original_size: OptPair;
  target_size: OptPair;
  crop_top_left: OptPair;
}

export type ConditioningField = keyof Conditioning;
export const CONDITIONING_FIELDS: readonly ConditioningField[] = ['original_size', 'target_size', 'crop_top_left'];

export function noConditioning(): Conditioning {
  return { original_size: [null, null], target_size: [null, null], crop_top_left: [null, null] };
}

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
  loras: DraftLora[];
  conditioning: Conditioning;
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
    loras: [],
    conditioning: noConditioning(),
  };
}

/**
 * The draft after choosing another model: that model's defaults (size, steps, guidance,
 * sampler, count), the prompts kept, the LoRAs that fit it kept (up to its limit), the size
 * conditioning kept only when it takes it.
 */
export function switchModel(d: Draft, m: Model): Draft {
  return {
    ...draftFor(m, d.prompt),
    negative_prompt: d.negative_prompt,
    loras: d.loras.filter((l) => loraFits(m, l.name)).slice(0, maxLoras(m)),
    conditioning: takesSizeConditioning(m) ? d.conditioning : noConditioning(),
  };
}

/** Adds the first LoRA of the model not yet chosen, at weight 1 (unchanged when none is left). */
export function addLora(d: Draft, m: Model): Draft {
  if (d.loras.length >= maxLoras(m)) return d;
  const name = lorasOf(m).find((n) => !d.loras.some((l) => l.name === n));
  if (name === undefined) return d;
  return { ...d, loras: [...d.loras, { name, weight: LORA_WEIGHT_DEFAULT }] };
}

export function setLora(d: Draft, index: number, patch: Partial<DraftLora>): Draft {
  return { ...d, loras: d.loras.map((l, i) => (i === index ? { ...l, ...patch } : l)) };
}

export function removeLora(d: Draft, index: number): Draft {
  return { ...d, loras: d.loras.filter((_, i) => i !== index) };
}

/** A problem found before sending, named as the server names fields (`loras[0].weight`). */
export interface FieldProblem {
  field: string;
  message: string;
}

const CONDITIONING_RULES: Record<ConditioningField, { min: number; max: number; what: string; parts: [string, string] }> = {
  original_size: { min: 8, max: 8192, what: 'Original size', parts: ['width', 'height'] },
  target_size: { min: 8, max: 8192, what: 'Target size', parts: ['width', 'height'] },
  crop_top_left: { min: 0, max: 8192, what: 'Crop', parts: ['top', 'left'] },
};

export function conditioningRange(field: ConditioningField): { min: number; max: number } {
  const { min, max } = CONDITIONING_RULES[field];
  return { min, max };
}

/** What the server would refuse in the LoRAs and size conditioning, checked before sending. */
export function validate(d: Draft, m: Model | undefined): FieldProblem[] {
  const out: FieldProblem[] = [];
  if (!m) return out;
  if (!isAvailable(m)) out.push({ field: 'model', message: `This model is unavailable: ${unavailableReason(m)}` });
  const limit = maxLoras(m);
  if (d.loras.length > 0 && limit === 0) {
    out.push({ field: 'loras', message: `Model ${m.id} takes no LoRAs.` });
  } else if (d.loras.length > limit) {
    out.push({ field: 'loras', message: `At most ${limit} LoRA${limit === 1 ? '' : 's'} for this model.` });
  }
  if (limit > 0) {
    d.loras.forEach((l, i) => {
      if (!loraFits(m, l.name)) {
        out.push({ field: `loras[${i}].name`, message: `LoRA “${l.name}” cannot be used with ${m.id}.` });
      } else if (d.loras.findIndex((x) => x.name === l.name) < i) {
        out.push({ field: `loras[${i}].name`, message: `LoRA “${l.name}” is chosen twice.` });
      }
      if (!Number.isFinite(l.weight) || l.weight < LORA_WEIGHT_MIN || l.weight > LORA_WEIGHT_MAX) {
        out.push({ field: `loras[${i}].weight`, message: `Weight from ${LORA_WEIGHT_MIN} to ${LORA_WEIGHT_MAX}.` });
      }
    });
  }
  if (takesSizeConditioning(m)) {
    for (const field of CONDITIONING_FIELDS) {
      const [a, b] = d.conditioning[field];
      const rule = CONDITIONING_RULES[field];
      if (a === null && b === null) continue;
      if (a === null || b === null) {
        out.push({ field, message: `${rule.what}: give both ${rule.parts[0]} and ${rule.parts[1]}, or leave both empty.` });
      } else if (![a, b].every((v) => Number.isInteger(v) && v >= rule.min && v <= rule.max)) {
        out.push({ field, message: `${rule.what}: whole numbers from ${rule.min} to ${rule.max}.` });
      }
    }
  }
  return out;
}

function pairOf(p: OptPair): SizePair | null {
  return p[0] !== null && p[1] !== null ? [p[0], p[1]] : null;
}

/**
 * The body of job.submit. The spec gives `mask_blur` and `inpaint_area` defaults, so the
 * generated type requires them; they are sent for edits only (the server refuses them in
 * other modes).
 */
export type JobBody = Omit<JobSubmit, 'mask_blur' | 'inpaint_area'> & Partial<Pick<JobSubmit, 'mask_blur' | 'inpaint_area'>>;

/** The body of job.submit for a draft (a remix keeps the parent's size). */
export function submission(d: Draft): JobBody {
  const base: JobBody = {
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
  if (d.loras.length > 0) base.loras = d.loras.map(({ name, weight }) => ({ name, weight }));
  for (const field of CONDITIONING_FIELDS) {
    const pair = pairOf(d.conditioning[field]);
    if (pair) base[field] = pair;
  }
  if (d.parent) return { ...base, mode: d.mode, parent_image_id: d.parent.id, strength: d.strength };
  return { ...base, width: d.width, height: d.height };
}

/** A resolved pair kept only when it differs from the server's default. */
function unlessDefault(p: SizePair | null | undefined, dflt: SizePair): OptPair {
  const [a, b] = p ?? [];
  if (a === undefined || b === undefined || (a === dflt[0] && b === dflt[1])) return [null, null];
  return [a, b];
}

/**
 * Fills the draft from an image: its prompt and settings (with its LoRAs and any size
 * conditioning that differs from the defaults), optionally its seed.
 */
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
    loras: (img.loras ?? []).map(({ name, weight }) => ({ name, weight })),
    conditioning: {
      original_size: unlessDefault(img.original_size, [img.width, img.height]),
      target_size: unlessDefault(img.target_size, [img.width, img.height]),
      crop_top_left: unlessDefault(img.crop_top_left, [0, 0]),
    },
  };
}

/** The pixels an outpaint adds on each side. */
export type Extend = NonNullable<JobSubmit['extend']>;
export type EditMode = 'inpaint' | 'outpaint';

export const MASK_BLUR_DEFAULT = 4;
export const MASK_BLUR_MAX = 64;
export const EXTEND_MAX = 2048;
/** The longest side an outpaint may reach. */
export const EDIT_MAX_SIDE = 8192;
export const EXTEND_SIDES = ['left', 'right', 'top', 'bottom'] as const;

/** An inpaint or outpaint as set up in the image dialog's Edit mode. */
export interface EditDraft {
  mode: EditMode;
  model: string;
  prompt: string;
  strength: number;
  mask_blur: number;
  /** "Only masked area": inpaint_area `masked`. */
  masked_only: boolean;
  extend: Extend;
}

/** The available models that offer `mode`. */
export function editModels(models: readonly Model[], mode: EditMode): Model[] {
  return models.filter((m) => isAvailable(m) && (m.params.modes as string[]).includes(mode));
}

/**
 * A fresh edit: the prompt box's model when it offers the mode (else the image's, else the
 * first that does), the image's prompt, the model's default strength for an inpaint and its
 * maximum for an outpaint (the new border has nothing to keep).
 */
export function editDraftFor(
  models: readonly Model[],
  mode: EditMode,
  prompt: string,
  prefer: readonly (string | undefined)[],
): EditDraft | null {
  const offered = editModels(models, mode);
  const m = prefer.map((id) => offered.find((x) => x.id === id)).find((x) => x !== undefined) ?? offered[0];
  if (!m) return null;
  return {
    mode,
    model: m.id,
    prompt,
    strength: mode === 'outpaint' ? m.params.strength.max : m.params.strength.default,
    mask_blur: MASK_BLUR_DEFAULT,
    masked_only: false,
    extend: { left: 0, right: 0, top: 0, bottom: 0 },
  };
}

const isInt = (v: number, min: number, max: number) => Number.isInteger(v) && v >= min && v <= max;

/** What the server would refuse in an edit of an image of `parent`'s size, checked before sending. */
export function validateEdit(e: EditDraft, m: Model | undefined, parent: { width: number; height: number }): FieldProblem[] {
  const out: FieldProblem[] = [];
  if (e.prompt.trim() === '') out.push({ field: 'prompt', message: 'Write a prompt first.' });
  if (!m) {
    out.push({ field: 'model', message: `No model here can ${e.mode}.` });
    return out;
  }
  const s = m.params.strength;
  if (!Number.isFinite(e.strength) || e.strength < s.min || e.strength > s.max) {
    out.push({ field: 'strength', message: `Strength from ${s.min} to ${s.max}.` });
  }
  if (!isInt(e.mask_blur, 0, MASK_BLUR_MAX)) {
    out.push({ field: 'mask_blur', message: `Mask blur: a whole number of pixels from 0 to ${MASK_BLUR_MAX}.` });
  }
  if (e.mode === 'outpaint') {
    const x = e.extend;
    if (!EXTEND_SIDES.every((k) => isInt(x[k], 0, EXTEND_MAX))) {
      out.push({ field: 'extend', message: `Each side: a whole number of pixels from 0 to ${EXTEND_MAX}.` });
    } else if (EXTEND_SIDES.every((k) => x[k] === 0)) {
      out.push({ field: 'extend', message: 'Add pixels on at least one side.' });
    } else if (parent.width + x.left + x.right > EDIT_MAX_SIDE || parent.height + x.top + x.bottom > EDIT_MAX_SIDE) {
      out.push({ field: 'extend', message: `The result may be at most ${EDIT_MAX_SIDE} pixels on each side.` });
    }
  }
  return out;
}

/**
 * The body of job.submit for an edit of image `parentId` (with the uploaded mask for an
 * inpaint). Steps, guidance, sampler, seed, count, negative prompt and LoRAs come from the
 * prompt box when it has the same model (its settings apply), else the model's defaults; the
 * size is left out (it follows the parent).
 */
export function editSubmission(e: EditDraft, parentId: number, maskId: number | null, box: Draft | null): JobBody {
  const base: JobBody =
    box && box.model === e.model
      ? submission({ ...box, prompt: e.prompt, parent: null, conditioning: noConditioning() })
      : { model: e.model, prompt: e.prompt, seed: -1, mode: 'txt2img', priority: 0 };
  delete base.width;
  delete base.height;
  const out: JobBody = { ...base, mode: e.mode, parent_image_id: parentId, strength: e.strength, mask_blur: e.mask_blur };
  if (e.mode === 'outpaint') return { ...out, extend: { ...e.extend } };
  return { ...out, ...(maskId !== null ? { mask_image_id: maskId } : {}), inpaint_area: e.masked_only ? 'masked' : 'whole' };
}

export const draft = signal<Draft | null>(null);
