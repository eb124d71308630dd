// The image dialog's Edit mode: inpaint (paint a mask over the image, regenerate what is
// painted) or outpaint (add pixels around it), with a prompt, the model, strength, mask blur
// and "Only masked area". Run uploads the mask first (a black/white PNG of the image's natural
// size: it becomes an image of the project, lineage material by design; an unchanged mask is
// not uploaded twice), then submits the job through the live connection as the prompt box does.
// Problems, found here or named by the server, are shown next to their control.
import { useRef, useState } from 'preact/hooks';
import type { ImageDetail, Model } from '../api/models';
import { uploadImage, uploadProblem } from '../api/uploads';
import { CommandError, type LiveClient } from '../live/live_client';
import {
  draft,
  editDraftFor,
  editModels,
  editSubmission,
  EXTEND_MAX,
  EXTEND_SIDES,
  MASK_BLUR_MAX,
  validateEdit,
  type EditDraft,
  type EditMode,
  type FieldProblem,
} from '../state/draft';
import { coveragePng, EMPTY_HISTORY, paintedPixels, rasterize, type History } from '../state/paint';
import { describeError, FieldError } from './FieldError';
import { MaskEditor, OutpaintPreview } from './MaskEditor';

interface Props {
  image: ImageDetail;
  project: number;
  models: Model[];
  client: LiveClient;
  /** The job went out: back to the image, with this note. */
  onQueued: (note: string) => void;
  onBack: () => void;
}

/** The control each server field is shown next to; anything else goes under the form. */
const PLACED = ['prompt', 'model', 'strength', 'mask_blur', 'inpaint_area', 'mask_image_id', 'extend'];
const placeOf = (field: string) => (field.startsWith('extend') ? 'extend' : PLACED.includes(field) ? field : '');

export function EditPanel({ image, project, models, client, onQueued, onBack }: Props) {
  const prefer = [draft.value?.model, image.model as string | undefined];
  const prompt = (image.prompt as string | undefined) ?? '';
  const [edit, setEdit] = useState<EditDraft | null>(
    () => editDraftFor(models, 'inpaint', prompt, prefer) ?? editDraftFor(models, 'outpaint', prompt, prefer),
  );
  const [strengthSet, setStrengthSet] = useState(false);
  const [history, setHistory] = useState<History>(EMPTY_HISTORY);
  const [errors, setErrors] = useState<FieldProblem[]>([]);
  const [busy, setBusy] = useState(false);
  const uploaded = useRef<{ history: History; id: number } | null>(null);
  const alt = prompt || image.original_name || `Upload #${image.id}`;

  if (!edit) {
    return (
      <div class="dialog-body">
        <p class="muted">No model on this server can inpaint or outpaint.</p>
        <button type="button" class="secondary" onClick={onBack}>
          Back
        </button>
      </div>
    );
  }
  const mode = edit.mode;
  const offered = editModels(models, mode);
  const model = offered.find((m) => m.id === edit.model);
  const errorOf = (field: string) => errors.filter((e) => placeOf(e.field) === field).map((e) => e.message).join(' ') || null;
  const formError = errors.filter((e) => placeOf(e.field) === '').map((e) => e.message).join(' ') || null;
  const set = (patch: Partial<EditDraft>) => {
    setEdit({ ...edit, ...patch });
    // Editing a control clears its error (the checkbox is the server's inpaint_area).
    const fields = Object.keys(patch).map((k) => (k === 'masked_only' ? 'inpaint_area' : k));
    setErrors(errors.filter((e) => !fields.includes(placeOf(e.field))));
  };
  const switchTo = (next: EditMode) => {
    if (next === mode) return;
    const fresh = editDraftFor(models, next, edit.prompt, [edit.model, ...prefer]);
    if (!fresh) return;
    setEdit({ ...fresh, mask_blur: edit.mask_blur, masked_only: edit.masked_only, extend: edit.extend, strength: strengthSet ? edit.strength : fresh.strength });
    setErrors([]);
  };
  const invalid = (field: string, id: string) =>
    errorOf(field) ? { 'aria-invalid': true as const, 'aria-describedby': id } : {};

  const show = (list: FieldProblem[]) => {
    setErrors(list);
    const first = list[0];
    if (!first) return;
    const target = { prompt: 'edit-prompt', model: 'edit-model', strength: 'edit-strength', mask_blur: 'edit-blur', extend: 'extend-left' }[
      placeOf(first.field)
    ];
    if (target) setTimeout(() => document.getElementById(target)?.focus(), 0);
  };

  const run = async () => {
    if (busy) return;
    const problems = validateEdit(edit, model, image);
    const coverage = mode === 'inpaint' ? rasterize(history.done, image.width, image.height) : null;
    if (coverage && paintedPixels(coverage) === 0) {
      problems.push({ field: 'mask_image_id', message: 'Paint over the part of the image to regenerate first.' });
    }
    if (problems.length > 0) return show(problems);
    setBusy(true);
    setErrors([]);
    try {
      let maskId: number | null = null;
      if (coverage) {
        if (uploaded.current?.history === history) {
          maskId = uploaded.current.id;
        } else {
          try {
            const png = await coveragePng(coverage);
            const mask = await uploadImage(project, png, { filename: `mask-of-${image.id}.png` });
            uploaded.current = { history, id: mask.id };
            maskId = mask.id;
          } catch (err) {
            return show([{ field: 'mask_image_id', message: `The mask could not be uploaded: ${uploadProblem(err) ?? describeError(err)}` }]);
          }
        }
      }
      await client.command('job.submit', { project, ...editSubmission(edit, image.id, maskId, draft.value) });
      onQueued(`${mode === 'inpaint' ? 'Inpaint' : 'Outpaint'} queued: it appears in the feed.`);
    } catch (err) {
      const field = err instanceof CommandError ? (err.field ?? '') : '';
      show([{ field, message: err instanceof CommandError ? err.message : describeError(err) }]);
    } finally {
      setBusy(false);
    }
  };

  const s = model?.params.strength ?? { min: 0, max: 1 };
  return (
    <div class="dialog-body edit-body">
      <div class="edit-stage">
        {mode === 'inpaint' ? (
          <MaskEditor
            src={image.url}
            alt={alt}
            width={image.width}
            height={image.height}
            history={history}
            onChange={(h) => {
              setHistory(h);
              setErrors(errors.filter((e) => placeOf(e.field) !== 'mask_image_id'));
            }}
            disabled={busy}
            errorId={errorOf('mask_image_id') ? 'edit-mask-error' : undefined}
          />
        ) : (
          <OutpaintPreview src={image.url} alt={alt} width={image.width} height={image.height} extend={edit.extend} />
        )}
        <FieldError id="edit-mask-error" message={errorOf('mask_image_id')} />
      </div>
      <form
        class="details edit-form"
        aria-label="Edit the image"
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <div class="segmented" role="group" aria-label="Edit mode">
          <button type="button" class="secondary small" aria-pressed={mode === 'inpaint'} data-testid="edit-inpaint" onClick={() => switchTo('inpaint')} disabled={!editModels(models, 'inpaint').length}>
            Inpaint
          </button>
          <button type="button" class="secondary small" aria-pressed={mode === 'outpaint'} data-testid="edit-outpaint" onClick={() => switchTo('outpaint')} disabled={!editModels(models, 'outpaint').length}>
            Outpaint
          </button>
        </div>
        <p class="muted small">
          {mode === 'inpaint'
            ? 'Paint over what the model should redo; the rest of the image stays as it is.'
            : 'Add pixels around the image; the model fills them in to match.'}
        </p>
        {mode === 'outpaint' && (
          <fieldset class="extend" {...invalid('extend', 'edit-extend-error')}>
            <legend>Add pixels (0 to {EXTEND_MAX})</legend>
            {EXTEND_SIDES.map((side) => (
              <div class="param" key={side}>
                <label for={`extend-${side}`}>{side[0]?.toUpperCase() + side.slice(1)}</label>
                <input
                  id={`extend-${side}`}
                  data-testid={`extend-${side}`}
                  type="number"
                  min={0}
                  max={EXTEND_MAX}
                  step={8}
                  value={edit.extend[side]}
                  onInput={(e) => set({ extend: { ...edit.extend, [side]: Number(e.currentTarget.value) } })}
                />
              </div>
            ))}
            <FieldError id="edit-extend-error" message={errorOf('extend')} />
          </fieldset>
        )}
        <div class="param">
          <label for="edit-model">Model</label>
          <select id="edit-model" value={edit.model} {...invalid('model', 'edit-model-error')} onChange={(e) => set({ model: e.currentTarget.value })}>
            {offered.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </select>
          <FieldError id="edit-model-error" message={errorOf('model')} />
        </div>
        <label for="edit-prompt">Prompt</label>
        <textarea
          id="edit-prompt"
          data-testid="edit-prompt"
          rows={3}
          value={edit.prompt}
          placeholder="What the painted part should show"
          {...invalid('prompt', 'edit-prompt-error')}
          onInput={(e) => set({ prompt: e.currentTarget.value })}
        />
        <FieldError id="edit-prompt-error" message={errorOf('prompt')} />
        <div class="param-grid">
          <div class="param">
            <label for="edit-strength">Strength</label>
            <input
              id="edit-strength"
              type="number"
              min={s.min}
              max={s.max}
              step="0.05"
              value={edit.strength}
              {...invalid('strength', 'edit-strength-error')}
              onInput={(e) => {
                setStrengthSet(true);
                set({ strength: Number(e.currentTarget.value) });
              }}
            />
            <FieldError id="edit-strength-error" message={errorOf('strength')} />
          </div>
          <div class="param">
            <label for="edit-blur">Mask blur (px)</label>
            <input
              id="edit-blur"
              type="number"
              min={0}
              max={MASK_BLUR_MAX}
              step={1}
              value={edit.mask_blur}
              {...invalid('mask_blur', 'edit-blur-error')}
              onInput={(e) => set({ mask_blur: Number(e.currentTarget.value) })}
            />
            <FieldError id="edit-blur-error" message={errorOf('mask_blur')} />
          </div>
        </div>
        {mode === 'inpaint' && (
          <div class="check">
            <label>
              <input
                type="checkbox"
                checked={edit.masked_only}
                {...invalid('inpaint_area', 'edit-area-error')}
                onChange={(e) => set({ masked_only: e.currentTarget.checked })}
              />{' '}
              Only masked area <span class="muted small">(work on a crop around the mask at the model's size)</span>
            </label>
            <FieldError id="edit-area-error" message={errorOf('inpaint_area')} />
          </div>
        )}
        <FieldError id="edit-error" message={formError} />
        <div class="actions">
          <button type="submit" data-testid="edit-run" disabled={busy || !model}>
            {busy ? 'Sending…' : mode === 'inpaint' ? 'Run inpaint' : 'Run outpaint'}
          </button>
          <button type="button" class="secondary" onClick={onBack} disabled={busy}>
            Back
          </button>
        </div>
      </form>
    </div>
  );
}
