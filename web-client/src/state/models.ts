// What the client knows about a model beyond its parameter ranges: its family and native
// size for people, whether it can be used, the LoRAs that fit it, and the short hash A1111
// shows. Every field added with SDXL/LoRA support is read defensively, so a model listed
// without them (a built-in, an older server) is a plain model that takes no LoRAs.
import type { LoraFile, Model } from '../api/models';

/** The most LoRAs any job may apply, and the weight range (as the server checks them). */
export const MAX_LORAS = 5;
export const LORA_WEIGHT_MIN = -4;
export const LORA_WEIGHT_MAX = 4;
export const LORA_WEIGHT_STEP = 0.05;
export const LORA_WEIGHT_DEFAULT = 1;

const FAMILY_NAMES: Record<string, string> = { sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL' };

/** "SDXL", "SD 1.x", "SD 2.x"; an unknown family as written; '' for non-SD models. */
export function familyLabel(family: string | null | undefined): string {
  if (!family) return '';
  return FAMILY_NAMES[family] ?? family;
}

/** The size the model was made for (its width/height defaults when not listed). */
export function nativeSize(m: Model): { width: number; height: number } {
  return { width: m.native_width ?? m.params.width.default, height: m.native_height ?? m.params.height.default };
}

export function isAvailable(m: Model): boolean {
  return m.available !== false;
}

export function unavailableReason(m: Model): string | null {
  if (isAvailable(m)) return null;
  return m.unavailable_reason || 'it cannot be loaded';
}

/** The picker's text for a model: "sdxl-base — SDXL, 1024×1024" (and why it is unavailable). */
export function modelLabel(m: Model): string {
  const { width, height } = nativeSize(m);
  const family = familyLabel(m.family);
  const text = `${m.id} — ${family ? `${family}, ` : ''}${width}×${height}`;
  return isAvailable(m) ? text : `${text} (unavailable)`;
}

/** The model a fresh prompt box starts with: the first that can be used. */
export function firstAvailable(models: readonly Model[]): Model | undefined {
  return models.find(isAvailable) ?? models[0];
}

/** How many LoRAs a job for this model may apply (0: none). */
export function maxLoras(m: Model | undefined): number {
  if (!m) return 0;
  return Math.max(0, Math.min(MAX_LORAS, m.max_loras ?? 0));
}

/** The names of the LoRAs that fit this model (none when it takes none). */
export function lorasOf(m: Model | undefined): string[] {
  if (!m || maxLoras(m) === 0) return [];
  return m.loras ?? [];
}

export function loraFits(m: Model | undefined, name: string): boolean {
  return lorasOf(m).includes(name);
}

/** Whether the prompt box offers a LoRA picker for this model. */
export function offersLoras(m: Model | undefined): boolean {
  return lorasOf(m).length > 0;
}

export interface LoraChoice {
  name: string;
  available: boolean;
  /** Why it cannot be chosen (unavailable file), for a tooltip. */
  reason: string | null;
}

/**
 * What a LoRA select offers for this model: those that fit, then the files of the same family
 * that cannot be used (shown disabled with their reason).
 */
export function loraChoices(m: Model | undefined, files: readonly LoraFile[]): LoraChoice[] {
  const names = lorasOf(m);
  const out: LoraChoice[] = names.map((name) => ({ name, available: true, reason: null }));
  if (!m || names.length === 0) return out;
  for (const f of files) {
    if (f.available || names.includes(f.name) || !m.family || f.family !== m.family) continue;
    out.push({ name: f.name, available: false, reason: f.reason || 'it cannot be loaded' });
  }
  return out;
}

export function takesSizeConditioning(m: Model | undefined): boolean {
  return !!m && m.size_conditioning === true;
}

/** A1111's short model hash: the first 10 hex digits of the sha256. */
export function shortHash(hash: string | null | undefined, digits = 10): string | null {
  return hash ? hash.slice(0, digits) : null;
}
