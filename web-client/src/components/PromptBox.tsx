// The prompt box: a model, its parameters within the model's ranges, and Generate
// (also Ctrl/Cmd+Enter). Submits through the live connection (`cmd job.submit`), so a
// submission made while reconnecting goes out once the connection is back, exactly once.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Model } from '../api/models';
import { CommandError, type LiveClient } from '../live/live_client';
import { draft, draftFor, submission, type Draft } from '../state/draft';
import { describeError, FieldError } from './FieldError';

interface Props {
  project: number;
  models: Model[];
  client: LiveClient;
  canGenerate: boolean;
}

const TYPING_IDLE_MS = 3000;

export function PromptBox({ project, models, client, canGenerate }: Props) {
  const d = draft.value;
  const [busy, setBusy] = useState(false);
  const [waiting, setWaiting] = useState(false);
  const [error, setError] = useState<{ field: string | undefined; message: string } | null>(null);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  useEffect(() => {
    const first = models[0];
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
  const typing = () => {
    client.setPresence(project, { typing: true });
    clearTimeout(typingTimer.current);
    typingTimer.current = setTimeout(() => client.setPresence(project, {}), TYPING_IDLE_MS);
  };

  const generate = async () => {
    if (!draft.value || busy) return;
    const current = draft.value;
    if (current.prompt.trim() === '') {
      setError({ field: 'prompt', message: 'Write a prompt first.' });
      return;
    }
    setBusy(true);
    setError(null);
    clearTimeout(typingTimer.current);
    client.setPresence(project, {});
    const slow = setTimeout(() => setWaiting(true), 400);
    try {
      await client.command('job.submit', { project, ...submission(current) });
      draft.value = { ...current, parent: null, mode: 'txt2img' };
    } catch (err) {
      const field = err instanceof CommandError ? err.field : undefined;
      setError({ field, message: err instanceof CommandError ? err.message : describeError(err) });
    } finally {
      clearTimeout(slow);
      setWaiting(false);
      setBusy(false);
    }
  };

  const fieldError = (name: string) => (error && error.field === name ? error.message : null);
  const known = ['prompt', 'negative_prompt', 'width', 'height', 'steps', 'guidance', 'seed', 'count', 'sampler', 'model'];
  const formError = error && !known.includes(error.field ?? '') ? error.message : null;

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
      <details class="params" open={error && error.field && error.field !== 'prompt' && known.includes(error.field) ? true : undefined}>
        <summary>Settings</summary>
        <div class="param-grid">
          <div class="param">
            <label for="p-model">Model</label>
            <select
              id="p-model"
              value={d.model}
              onChange={(e) => {
                const m = models.find((x) => x.id === e.currentTarget.value);
                if (m) draft.value = { ...draftFor(m, d.prompt), parent: null };
              }}
            >
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
            <p class="muted small">{model.description}</p>
          </div>
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
        </div>
      </details>
      <FieldError id="generate-error" message={formError} />
      <div class="row">
        <button type="submit" disabled={busy}>
          Generate
        </button>
        {waiting && <span class="muted small">Sending… (it goes out as soon as the connection is back)</span>}
      </div>
    </form>
  );
}
