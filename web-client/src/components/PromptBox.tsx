// The prompt box: a model (with its family and native size), its parameters within the
// model's ranges, the LoRAs that fit it, SDXL's size conditioning, and Generate
// (also Ctrl/Cmd+Enter). Submits through the live connection (`cmd job.submit`), so a
// submission made while reconnecting goes out once the connection is back, exactly once.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LoraFile, Model } from '../api/models';
import { CommandError, type LiveClient } from '../live/live_client';
import {
  CONDITIONING_FIELDS,
  draft,
  draftFor,
  submission,
  switchModel,
  validate,
  type Draft,
  type FieldProblem,
} from '../state/draft';
import {
  familyLabel,
  firstAvailable,
  isAvailable,
  maxLoras,
  modelLabel,
  nativeSize,
  offersLoras,
  shortHash,
  takesSizeConditioning,
  unavailableReason,
} from '../state/models';
import { describeError, FieldError } from './FieldError';
import { inputIdOf, LoraPicker, SizeConditioning } from './LoraPicker';

interface Props {
  project: number;
  models: Model[];
  /** Every LoRA file of the server (unavailable ones are shown disabled). */
  loraFiles?: readonly LoraFile[];
  client: LiveClient;
  canGenerate: boolean;
}

const TYPING_IDLE_MS = 3000;

const SETTINGS_FIELDS = ['negative_prompt', 'width', 'height', 'steps', 'guidance', 'seed', 'count', 'sampler', 'model', 'strength'];
const isLoraField = (f: string) => f === 'loras' || /^loras\[\d+\]\.(name|weight)$/.test(f);
const isConditioningField = (f: string) => (CONDITIONING_FIELDS as readonly string[]).includes(f);

export function PromptBox({ project, models, loraFiles = [], client, canGenerate }: Props) {
  const d = draft.value;
  const [busy, setBusy] = useState(false);
  const [waiting, setWaiting] = useState(false);
  const [errors, setErrors] = useState<FieldProblem[]>([]);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  useEffect(() => {
    const first = firstAvailable(models);
    if (!draft.value && first) draft.value = draftFor(first);
  }, [models]);
  useEffect(() => () => clearTimeout(typingTimer.current), []);

  if (!canGenerate) {
    return (
      <section class="card prompt-box" aria-label="Generate">
        <p class="muted">You are a viewer in this project: you can watch and download, but not generate.</p>
        <button type="button" disabled>
          Generate
        </button>
      </section>
    );
  }
  if (!d) return <section class="card prompt-box muted">Loading models…</section>;
  const model = models.find((m) => m.id === d.model) ?? models[0];
  if (!model) return <section class="card prompt-box">This server offers no models.</section>;
  const p = model.params;

  const set = (patch: Partial<Draft>) => {
    if (draft.value) draft.value = { ...draft.value, ...patch };
  };
  const clearErrors = (keep: (field: string) => boolean) => {
    if (errors.some((e) => !keep(e.field))) setErrors(errors.filter((e) => keep(e.field)));
  };

  const showsLoras = offersLoras(model) || d.loras.length > 0;
  const showsConditioning = takesSizeConditioning(model);
  // The fields that have a place for their error; any other error is shown under the form.
  const shown = (field: string) =>
    field === 'prompt' ||
    (SETTINGS_FIELDS.includes(field) &&
      !(d.parent && (field === 'width' || field === 'height')) &&
      !(!d.parent && field === 'strength') &&
      !(field === 'sampler' && p.samplers.length <= 1)) ||
    (showsLoras && isLoraField(field)) ||
    (showsConditioning && isConditioningField(field));

  const showProblems = (list: FieldProblem[]) => {
    setErrors(list);
    const placed = list.filter((e) => shown(e.field));
    if (placed.some((e) => e.field !== 'prompt')) setSettingsOpen(true);
    if (placed.some((e) => isConditioningField(e.field))) setAdvancedOpen(true);
    const first = placed[0];
    if (first) setTimeout(() => document.getElementById(inputIdOf(first.field))?.focus(), 0);
  };
  const typing = () => {
    client.setPresence(project, { typing: true });
    clearTimeout(typingTimer.current);
    typingTimer.current = setTimeout(() => client.setPresence(project, {}), TYPING_IDLE_MS);
  };

  const generate = async () => {
    if (!draft.value || busy) return;
    const current = draft.value;
    const problems = validate(current, models.find((m) => m.id === current.model));
    if (current.prompt.trim() === '') problems.unshift({ field: 'prompt', message: 'Write a prompt first.' });
    if (problems.length > 0) {
      showProblems(problems);
      return;
    }
    setBusy(true);
    setErrors([]);
    clearTimeout(typingTimer.current);
    client.setPresence(project, {});
    const slow = setTimeout(() => setWaiting(true), 400);
    try {
      await client.command('job.submit', { project, ...submission(current) });
      draft.value = { ...current, parent: null, mode: 'txt2img' };
    } catch (err) {
      const field = err instanceof CommandError ? err.field : undefined;
      showProblems([{ field: field ?? '', message: err instanceof CommandError ? err.message : describeError(err) }]);
    } finally {
      clearTimeout(slow);
      setWaiting(false);
      setBusy(false);
    }
  };

  const fieldError = (name: string) => errors.find((e) => e.field === name)?.message ?? null;
  const formErrors = errors.filter((e) => !shown(e.field));
  const native = nativeSize(model);
  const unavailable = models.filter((m) => !isAvailable(m));
  const facts = [
    familyLabel(model.family),
    `native ${native.width}×${native.height}`,
    maxLoras(model) > 0 ? `up to ${maxLoras(model)} LoRAs` : '',
    shortHash(model.hash) ? `hash ${shortHash(model.hash)}` : '',
  ].filter((x) => x !== '');

  const num = (
    name: 'width' | 'height' | 'steps' | 'count' | 'seed',
    label: string,
    range: { min: number; max: number; multiple_of?: number },
  ) => (
    <div class="param">
      <label for={`p-${name}`}>{label}</label>
      <input
        id={`p-${name}`}
        type="number"
        min={range.min}
        max={range.max}
        step={range.multiple_of ?? 1}
        value={d[name]}
        aria-invalid={fieldError(name) ? true : undefined}
        aria-describedby={fieldError(name) ? `p-${name}-error` : undefined}
        onInput={(e) => set({ [name]: Number(e.currentTarget.value) } as Partial<Draft>)}
      />
      <FieldError id={`p-${name}-error`} message={fieldError(name)} />
    </div>
  );

  return (
    <form
      class="card prompt-box"
      aria-label="Generate"
      onSubmit={(e) => {
        e.preventDefault();
        void generate();
      }}
    >
      {d.parent && (
        <p class="remix-chip">
          <img src={`${d.parent.thumb}?size=64`} alt="" width={32} height={32} />
          Remixing image #{d.parent.id}: its structure is kept, your prompt changes it.
          <button type="button" class="link" onClick={() => set({ parent: null, mode: 'txt2img' })}>
            Stop remixing
          </button>
        </p>
      )}
      <label for="prompt">Prompt</label>
      <textarea
        id="prompt"
        rows={3}
        value={d.prompt}
        placeholder="Describe what to make (Ctrl+Enter generates)"
        aria-invalid={fieldError('prompt') ? true : undefined}
        aria-describedby={fieldError('prompt') ? 'prompt-error' : undefined}
        onInput={(e) => {
          set({ prompt: e.currentTarget.value });
          typing();
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            void generate();
          }
        }}
      />
      <FieldError id="prompt-error" message={fieldError('prompt')} />
      <details class="params" open={settingsOpen} onToggle={(e) => setSettingsOpen(e.currentTarget.open)}>
        <summary>Settings</summary>
        <div class="param-grid">
          <div class="param param-wide">
            <label for="p-model">Model</label>
            <select
              id="p-model"
              value={d.model}
              aria-invalid={fieldError('model') ? true : undefined}
              aria-describedby={fieldError('model') ? 'p-model-facts p-model-error' : 'p-model-facts'}
              onChange={(e) => {
                const m = models.find((x) => x.id === e.currentTarget.value);
                if (!m) return;
                draft.value = switchModel(d, m);
                clearErrors((f) => f === 'prompt' || f === 'negative_prompt');
              }}
            >
              {models.map((m) => (
                <option key={m.id} value={m.id} disabled={!isAvailable(m)} title={unavailableReason(m) ?? undefined}>
                  {modelLabel(m)}
                </option>
              ))}
            </select>
            <p id="p-model-facts" class="muted small model-facts">
              {facts.join(' · ')}
            </p>
            <p class="muted small">{model.description}</p>
            <FieldError id="p-model-error" message={fieldError('model')} />
            {unavailable.length > 0 && (
              <ul class="muted small unavailable-models" aria-label="Unavailable models">
                {unavailable.map((m) => (
                  <li key={m.id}>
                    <strong>{m.id}</strong> is unavailable: {unavailableReason(m)}
                  </li>
                ))}
              </ul>
            )}
          </div>
          {showsLoras && (
            <LoraPicker
              draft={d}
              model={model}
              files={loraFiles}
              errorOf={fieldError}
              onChange={(next) => {
                draft.value = next;
                clearErrors((f) => !isLoraField(f));
              }}
            />
          )}
          {!d.parent && num('width', 'Width', p.width)}
          {!d.parent && num('height', 'Height', p.height)}
          {num('steps', 'Steps', p.steps)}
          <div class="param">
            <label for="p-guidance">Guidance</label>
            <input
              id="p-guidance"
              type="number"
              min={p.guidance.min}
              max={p.guidance.max}
              step="0.1"
              value={d.guidance}
              aria-invalid={fieldError('guidance') ? true : undefined}
              aria-describedby={fieldError('guidance') ? 'p-guidance-error' : undefined}
              onInput={(e) => set({ guidance: Number(e.currentTarget.value) })}
            />
            <FieldError id="p-guidance-error" message={fieldError('guidance')} />
          </div>
          {num('seed', 'Seed (-1: random)', { min: -1, max: p.seed.max })}
          {num('count', 'Images', p.count)}
          {p.samplers.length > 1 && (
            <div class="param">
              <label for="p-sampler">Sampler</label>
              <select id="p-sampler" value={d.sampler} onChange={(e) => set({ sampler: e.currentTarget.value })}>
                {p.samplers.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
              <FieldError id="p-sampler-error" message={fieldError('sampler')} />
            </div>
          )}
          {d.parent && (
            <div class="param">
              <label for="p-strength">Strength</label>
              <input
                id="p-strength"
                type="number"
                min={p.strength.min}
                max={p.strength.max}
                step="0.05"
                value={d.strength}
                onInput={(e) => set({ strength: Number(e.currentTarget.value) })}
              />
              <FieldError id="p-strength-error" message={fieldError('strength')} />
            </div>
          )}
          <div class="param">
            <label for="p-negative">Negative prompt</label>
            <input
              id="p-negative"
              value={d.negative_prompt}
              onInput={(e) => set({ negative_prompt: e.currentTarget.value })}
            />
            <FieldError id="p-negative-error" message={fieldError('negative_prompt')} />
          </div>
          {showsConditioning && (
            <SizeConditioning
              draft={d}
              open={advancedOpen}
              onToggle={setAdvancedOpen}
              errorOf={fieldError}
              onChange={(field, value) => {
                set({ conditioning: { ...d.conditioning, [field]: value } });
                clearErrors((f) => f !== field);
              }}
            />
          )}
        </div>
      </details>
      <FieldError id="generate-error" message={formErrors.map((e) => e.message).join(' ') || null} />
      <div class="row">
        <button type="submit" disabled={busy}>
          Generate
        </button>
        {waiting && <span class="muted small">Sending… (it goes out as soon as the connection is back)</span>}
      </div>
    </form>
  );
}
