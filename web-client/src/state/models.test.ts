// Model facts for people: family names, native size, availability, the LoRAs that fit.
import { describe, expect, it } from 'vitest';
import type { LoraFile, Model } from '../api/models';
import { inputIdOf } from '../components/LoraPicker';
import {
  familyLabel,
  firstAvailable,
  loraChoices,
  lorasOf,
  maxLoras,
  modelLabel,
  nativeSize,
  offersLoras,
  shortHash,
  takesSizeConditioning,
} from './models';

const params = (w: number, h: number): Model['params'] => ({
  width: { min: 64, max: 2048, default: w },
  height: { min: 64, max: 2048, default: h },
  steps: { min: 1, max: 50, default: 20 },
  count: { min: 1, max: 4, default: 1 },
  guidance: { min: 0, max: 20, default: 7 },
  strength: { min: 0, max: 1, default: 0.6 },
  seed: { min: -1, max: 2 ** 53 - 1, default: -1 },
  samplers: ['euler'],
  default_sampler: 'euler',
  modes: ['txt2img'],
  upscale_factors: [],
});

// A model as an older server lists it: none of the SDXL/LoRA fields.
const cppn = { id: 'cppn', kind: 'builtin', description: '', params: params(512, 512) } as Model;
const sdxl: Model = {
  ...cppn,
  id: 'juggernaut.safetensors',
  kind: 'sd',
  params: params(1024, 1024),
  family: 'sdxl',
  hash: '0123456789abcdef'.repeat(4),
  available: true,
  unavailable_reason: null,
  native_width: 1024,
  native_height: 1024,
  size_conditioning: true,
  max_loras: 5,
  loras: ['ink'],
};
const broken: Model = { ...sdxl, id: 'half.safetensors', family: null, available: false, unavailable_reason: 'truncated: 10 of 6938 MB' };
const lora = (name: string, family: string | null, reason: string | null = null): LoraFile => ({
  name,
  family,
  hash: null,
  available: reason === null,
  reason,
});

describe('model facts', () => {
  it('names families as people know them', () => {
    expect(familyLabel('sdxl')).toBe('SDXL');
    expect(familyLabel('sd1')).toBe('SD 1.x');
    expect(familyLabel('sd2')).toBe('SD 2.x');
    expect(familyLabel(null)).toBe('');
    expect(familyLabel('')).toBe('');
    expect(familyLabel('sd3')).toBe('sd3');
  });

  it('labels picker options with family and native size, and says when unavailable', () => {
    expect(modelLabel(sdxl)).toBe('juggernaut.safetensors — SDXL, 1024×1024');
    expect(modelLabel(cppn)).toBe('cppn — 512×512');
    expect(modelLabel(broken)).toBe('half.safetensors — 1024×1024 (unavailable)');
    expect(nativeSize({ ...sdxl, native_width: 896 })).toEqual({ width: 896, height: 1024 });
  });

  it('starts with the first available model', () => {
    expect(firstAvailable([broken, cppn, sdxl])?.id).toBe('cppn');
    expect(firstAvailable([broken])?.id).toBe('half.safetensors');
    expect(firstAvailable([])).toBeUndefined();
  });

  it('the short hash is A1111s first 10 hex digits', () => {
    expect(shortHash(sdxl.hash)).toBe('0123456789');
    expect(shortHash(null)).toBeNull();
    expect(shortHash('')).toBeNull();
  });

  it('a model without the new fields takes no LoRAs and no size conditioning', () => {
    expect(maxLoras(cppn)).toBe(0);
    expect(lorasOf(cppn)).toEqual([]);
    expect(offersLoras(cppn)).toBe(false);
    expect(takesSizeConditioning(cppn)).toBe(false);
    expect(offersLoras({ ...sdxl, loras: [] })).toBe(false);
    expect(offersLoras({ ...sdxl, max_loras: 0 })).toBe(false);
    expect(offersLoras(sdxl)).toBe(true);
    expect(maxLoras({ ...sdxl, max_loras: 9 })).toBe(5);
  });

  it('offers the LoRAs that fit, then unavailable ones of the same family, disabled', () => {
    const files = [lora('ink', 'sdxl'), lora('cut', 'sdxl', 'no tensors'), lora('old', 'sd1', 'bad header'), lora('wc', 'sd1')];
    expect(loraChoices(sdxl, files)).toEqual([
      { name: 'ink', available: true, reason: null },
      { name: 'cut', available: false, reason: 'no tensors' },
    ]);
    expect(loraChoices(cppn, files)).toEqual([]);
  });

  it('maps server field names to the inputs that show their errors', () => {
    expect(inputIdOf('loras[2].name')).toBe('p-lora-2');
    expect(inputIdOf('loras[0].weight')).toBe('p-lora-0-weight');
    expect(inputIdOf('loras')).toBe('p-lora-add');
    expect(inputIdOf('target_size')).toBe('p-target_size-0');
    expect(inputIdOf('negative_prompt')).toBe('p-negative');
    expect(inputIdOf('steps')).toBe('p-steps');
  });
});
