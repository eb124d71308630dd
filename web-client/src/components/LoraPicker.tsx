// The prompt box's LoRA picker (up to the model's max_loras, each with a weight) and SDXL's
// size conditioning (an "Advanced" section). Both edit the draft through `onChange`; errors
// come in named as the server names fields (`loras[1].weight`, `original_size`).
import type { LoraFile, Model } from '../api/models';
import {
  conditioningRange,
  type Conditioning,
  type ConditioningField,
  type Draft,
  addLora,
  removeLora,
  setLora,
} from '../state/draft';
import {
  LORA_WEIGHT_MAX,
  LORA_WEIGHT_MIN,
  LORA_WEIGHT_STEP,
  loraChoices,
  lorasOf,
  maxLoras,
} from '../state/models';
import { FieldError } from './FieldError';

type ErrorOf = (field: string) => string | null;

/** Focuses an element once the render that adds it has happened. */
function focusSoon(id: string) {
  setTimeout(() => document.getElementById(id)?.focus(), 0);
}

/** The id of the input a field error belongs to (for focus and aria). */
export function inputIdOf(field: string): string {
  const lora = /^loras\[(\d+)\]\.(name|weight)$/.exec(field);
  if (lora) return lora[2] === 'name' ? `p-lora-${lora[1]}` : `p-lora-${lora[1]}-weight`;
  if (field === 'loras') return 'p-lora-add';
  if (field === 'original_size' || field === 'target_size' || field === 'crop_top_left') return `p-${field}-0`;
  if (field === 'prompt') return 'prompt';
  if (field === 'negative_prompt') return 'p-negative';
  return `p-${field}`;
}

interface LoraProps {
  draft: Draft;
  model: Model;
  files: readonly LoraFile[];
  errorOf: ErrorOf;
  onChange: (next: Draft) => void;
}

export function LoraPicker({ draft: d, model, files, errorOf, onChange }: LoraProps) {
  const limit = maxLoras(model);
  const choices = loraChoices(model, files);
  const canAdd = d.loras.length < limit && lorasOf(model).some((n) => !d.loras.some((l) => l.name === n));
  const describedBy = (field: string, id: string) => (errorOf(field) ? id : undefined);

  return (
    <fieldset class="loras param-wide" aria-describedby="p-loras-help">
      <legend>
        LoRAs <span class="muted small">({d.loras.length} of at most {limit})</span>
      </legend>
      {d.loras.length === 0 && <p class="muted small">None chosen.</p>}
      {d.loras.length > 0 && (
        <ul class="lora-list">
          {d.loras.map((l, i) => {
            const nameField = `loras[${i}].name`;
            const weightField = `loras[${i}].weight`;
            const known = choices.some((c) => c.name === l.name);
            return (
              <li key={i} class="lora-row">
                <div class="param lora-name">
                  <label for={`p-lora-${i}`}>LoRA {i + 1}</label>
                  <select
                    id={`p-lora-${i}`}
                    value={l.name}
                    aria-invalid={errorOf(nameField) ? true : undefined}
                    aria-describedby={describedBy(nameField, `p-lora-${i}-error`)}
                    onChange={(e) => onChange(setLora(d, i, { name: e.currentTarget.value }))}
                  >
                    {!known && <option value={l.name}>{l.name} (does not fit this model)</option>}
                    {choices.map((c) => (
                      <option
                        key={c.name}
                        value={c.name}
                        disabled={!c.available || d.loras.some((x, j) => j !== i && x.name === c.name)}
                        title={c.reason ?? undefined}
                      >
                        {c.available ? c.name : `${c.name} (unavailable: ${c.reason})`}
                      </option>
                    ))}
                  </select>
                  <FieldError id={`p-lora-${i}-error`} message={errorOf(nameField)} />
                </div>
                <div class="param lora-weight">
                  <label for={`p-lora-${i}-weight`}>Weight</label>
                  <input
                    id={`p-lora-${i}-weight`}
                    type="number"
                    min={LORA_WEIGHT_MIN}
                    max={LORA_WEIGHT_MAX}
                    step={LORA_WEIGHT_STEP}
                    value={Number.isNaN(l.weight) ? '' : l.weight}
                    aria-invalid={errorOf(weightField) ? true : undefined}
                    aria-describedby={describedBy(weightField, `p-lora-${i}-weight-error`)}
                    onInput={(e) => {
                      const v = e.currentTarget.value;
                      onChange(setLora(d, i, { weight: v === '' ? Number.NaN : Number(v) }));
                    }}
                  />
                  <FieldError id={`p-lora-${i}-weight-error`} message={errorOf(weightField)} />
                </div>
                <button
                  type="button"
                  class="secondary small lora-remove"
                  aria-label={`Remove LoRA ${i + 1} (${l.name})`}
                  onClick={() => {
                    onChange(removeLora(d, i));
                    const rest = d.loras.length - 1;
                    focusSoon(rest > 0 ? `p-lora-${Math.min(i, rest - 1)}` : 'p-lora-add');
                  }}
                >
                  Remove
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <button
        type="button"
        id="p-lora-add"
        class="secondary small"
        disabled={!canAdd}
        aria-invalid={errorOf('loras') ? true : undefined}
        aria-describedby={describedBy('loras', 'p-loras-error')}
        onClick={() => {
          const next = addLora(d, model);
          if (next === d) return;
          onChange(next);
          focusSoon(`p-lora-${next.loras.length - 1}`);
        }}
      >
        Add LoRA
      </button>
      <FieldError id="p-loras-error" message={errorOf('loras')} />
      <p id="p-loras-help" class="muted small">
        Weight from {LORA_WEIGHT_MIN} to {LORA_WEIGHT_MAX} (1: as trained). A1111's <code>&lt;lora:name:weight&gt;</code> in
        the prompt works too.
      </p>
    </fieldset>
  );
}

const PAIRS: { field: ConditioningField; legend: string; labels: [string, string] }[] = [
  { field: 'original_size', legend: 'Original size', labels: ['Original width', 'Original height'] },
  { field: 'target_size', legend: 'Target size', labels: ['Target width', 'Target height'] },
  { field: 'crop_top_left', legend: 'Crop', labels: ['Crop top', 'Crop left'] },
];

interface ConditioningProps {
  draft: Draft;
  open: boolean;
  onToggle: (open: boolean) => void;
  errorOf: ErrorOf;
  onChange: (field: ConditioningField, value: Conditioning[ConditioningField]) => void;
}

/** SDXL's size conditioning, collapsed; empty fields mean the defaults. */
export function SizeConditioning({ draft: d, open, onToggle, errorOf, onChange }: ConditioningProps) {
  const placeholder = (field: ConditioningField, k: 0 | 1) =>
    field === 'crop_top_left' ? '0' : String(k === 0 ? d.width : d.height);
  return (
    <details class="advanced param-wide" open={open} onToggle={(e) => onToggle(e.currentTarget.open)}>
      <summary>Advanced: size conditioning</summary>
      <p class="muted small">
        What SDXL is told about the picture's source size, framing and crop. Empty: the output size and no crop.
      </p>
      <div class="pairs">
        {PAIRS.map(({ field, legend, labels }) => {
          const err = errorOf(field);
          const range = conditioningRange(field);
          const pair = d.conditioning[field];
          return (
            <fieldset key={field} class="pair">
              <legend class="sr-only">{legend}</legend>
              {([0, 1] as const).map((k) => (
                <div class="param" key={k}>
                  <label for={`p-${field}-${k}`}>{labels[k]}</label>
                  <input
                    id={`p-${field}-${k}`}
                    type="number"
                    inputMode="numeric"
                    min={range.min}
                    max={range.max}
                    step={1}
                    placeholder={placeholder(field, k)}
                    value={pair[k] ?? ''}
                    aria-invalid={err ? true : undefined}
                    aria-describedby={err ? `p-${field}-error` : undefined}
                    onInput={(e) => {
                      const v = e.currentTarget.value;
                      const next: [number | null, number | null] = [pair[0], pair[1]];
                      next[k] = v === '' ? null : Number(v);
                      onChange(field, next);
                    }}
                  />
                </div>
              ))}
              <FieldError id={`p-${field}-error`} message={err} />
            </fieldset>
          );
        })}
      </div>
    </details>
  );
}
