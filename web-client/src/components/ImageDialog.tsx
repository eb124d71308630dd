// One image, large: its parameters (or, for an upload, who uploaded it and its file name), its
// lineage (parent and children, with who made each), and what can be done with it: Variation,
// Remix, Upscale, Edit (inpaint/outpaint, editors only), Reuse, Download, React. A generated
// parent keeps its model for Variation and Upscale; an upload takes the prompt box's model.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Image, ImageDetail, Model } from '../api/models';
import { rest } from '../api/rest';
import type { LiveClient } from '../live/live_client';
import { draft, draftFor, editModels, EXTEND_SIDES, reuse, type Extend } from '../state/draft';
import { firstAvailable, loraFits, shortHash } from '../state/models';
import type { RoomStore } from '../state/room';
import { EditPanel } from './EditPanel';
import { describeError } from './FieldError';
import { useModal } from './useModal';

export const EMOJI = ['👍', '❤️', '🔥', '😂', '🎨'] as const;

interface Props {
  id: number;
  project: number;
  store: RoomStore;
  client: LiveClient;
  models: Model[];
  onOpen: (id: number) => void;
  onClose: () => void;
}

export function ImageDialog({ id, project, store, client, models, onOpen, onClose }: Props) {
  const [detail, setDetail] = useState<ImageDetail | null>(null);
  const [mine, setMine] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const closeRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    let live = true;
    setDetail(null);
    setError(null);
    setNote(null);
    setEditing(false);
    rest
      .image(id)
      .then((d) => {
        if (!live) return;
        setDetail(d);
        setMine(d.my_reactions);
      })
      .catch((err) => live && setError(describeError(err)));
    client.setPresence(project, { viewing: id });
    closeRef.current?.focus();
    return () => {
      live = false;
      client.setPresence(project, {});
    };
  }, [id]);

  const dialogRef = useRef<HTMLDivElement>(null);
  // Escape leaves the Edit mode first, then closes.
  useModal(dialogRef, () => (editing ? setEditing(false) : onClose()));

  const canEdit = store.canEdit.value;
  // Children made since the detail was read appear as their jobs finish.
  const children: Image[] = detail ? [...detail.children] : [];
  for (const img of store.images.value.values()) {
    if (img.parent_image_id === id && !children.some((c) => c.id === img.id)) children.push(img);
  }
  const counts = store.reactions.value.get(id) ?? detail?.reactions ?? {};
  // An upload has no job: no model, prompt or settings.
  const upload = !!detail && (detail.source === 'upload' || detail.job_id === null);
  const boxModel = models.find((m) => m.id === draft.value?.model) ?? firstAvailable(models);
  const model = detail ? (upload ? boxModel : models.find((m) => m.id === detail.model)) : undefined;
  const supports = (mode: string) => !!model && (model.params.modes as string[]).includes(mode);
  const canEditImage = editModels(models, 'inpaint').length > 0 || editModels(models, 'outpaint').length > 0;
  const prompt = (detail?.prompt as string | undefined) ?? '';
  const label = prompt || detail?.original_name || `Upload #${id}`;
  const usedLoras = detail?.loras ?? [];
  const keptLoras = usedLoras.filter((l) => loraFits(model, l.name)).map(({ name, weight }) => ({ name, weight }));
  // The hash recorded with the image; from the model list only for a server that records none.
  const modelHash = detail ? (detail.model_hash === undefined ? model?.hash : detail.model_hash) : null;
  // SDXL's size conditioning, shown when it is not the default (output size, no crop).
  const size = (v: number[] | null | undefined) => (v && v.length === 2 ? `${v[0]}×${v[1]}` : null);
  const [cropTop = 0, cropLeft = 0] = detail?.crop_top_left ?? [];
  const outSize = detail ? `${detail.width}×${detail.height}` : '';
  const notDefault =
    !!detail &&
    ([detail.original_size, detail.target_size].some((v) => size(v) !== null && size(v) !== outSize) ||
      cropTop !== 0 ||
      cropLeft !== 0);
  const conditioning = notDefault
    ? [
        size(detail?.original_size) && `original ${size(detail?.original_size)}`,
        size(detail?.target_size) && `target ${size(detail?.target_size)}`,
        detail?.crop_top_left && `crop top ${cropTop}, left ${cropLeft}`,
      ].filter((x): x is string => !!x)
    : [];

  const submit = async (mode: 'variation' | 'upscale') => {
    if (!detail || !model) return;
    setNote(null);
    try {
      await client.command('job.submit', {
        project,
        model: model.id,
        // An upload has no prompt: the prompt box's, else its name.
        prompt: upload ? draft.value?.prompt.trim() || label : detail.prompt,
        mode,
        parent_image_id: detail.id,
        ...(detail.negative_prompt ? { negative_prompt: detail.negative_prompt } : {}),
        // A variation or upscale keeps the LoRAs of its parent (those the model still offers).
        ...(keptLoras.length > 0 ? { loras: keptLoras } : {}),
      });
      setNote(mode === 'variation' ? 'Variation queued: it appears in the feed.' : 'Upscale queued: it appears in the feed.');
    } catch (err) {
      setNote(describeError(err));
    }
  };

  const remix = () => {
    if (!detail || !model) return;
    const base = draft.value ?? draftFor(model);
    draft.value = {
      ...(upload ? base : reuse(base, detail, false)),
      mode: 'remix',
      parent: { id: detail.id, thumb: detail.thumb_url },
      strength: model.params.strength.default,
    };
    onClose();
    document.getElementById('prompt')?.focus();
  };

  const reuseIt = (withSeed: boolean) => {
    if (!detail || upload) return;
    const base = draft.value ?? (model ? draftFor(model) : null);
    if (!base) return;
    draft.value = reuse(base, detail, withSeed);
    onClose();
    document.getElementById('prompt')?.focus();
  };

  const react = async (emoji: string) => {
    const on = !mine.includes(emoji);
    try {
      await client.command(on ? 'reaction.set' : 'reaction.clear', { image: id, emoji });
      setMine(on ? [...mine, emoji].sort() : mine.filter((e) => e !== emoji));
    } catch (err) {
      setNote(describeError(err));
    }
  };

  const who = (img: Image) => store.usernameOf(img.created_by);
  // An edit's own settings (in the image detail as in its Job; read loosely, as older servers send none).
  const edit = detail as
    | (ImageDetail & { mask_image_id?: number | null; mask_blur?: number | null; inpaint_area?: string | null; extend?: Extend | null })
    | null;
  const extended = EXTEND_SIDES.filter((k) => (edit?.extend?.[k] ?? 0) > 0).map((k) => `${k} ${edit?.extend?.[k]} px`);

  const generated = () =>
    detail && (
      <>
        <p class="job-prompt">{detail.prompt}</p>
        <p class="muted small">Made by {who(detail)}</p>
        <dl class="facts" aria-label="Parameters">
          <div><dt>Model</dt><dd>{detail.model}</dd></div>
          {modelHash && (
            <div>
              <dt>Model hash</dt>
              <dd>
                <code title={`sha256 ${modelHash}`}>{shortHash(modelHash)}</code>
              </dd>
            </div>
          )}
          {usedLoras.length > 0 && (
            <div>
              <dt>LoRAs</dt>
              <dd>
                <ul class="lora-facts" aria-label="LoRAs used">
                  {usedLoras.map((l) => (
                    <li key={l.name} title={l.hash ? `sha256 ${l.hash}` : undefined}>
                      {l.name} <span class="muted">weight {l.weight}</span>
                    </li>
                  ))}
                </ul>
              </dd>
            </div>
          )}
          <div><dt>Size</dt><dd>{detail.width}×{detail.height}</dd></div>
          <div><dt>Steps</dt><dd>{detail.steps}</dd></div>
          <div><dt>Guidance</dt><dd>{detail.guidance}</dd></div>
          <div><dt>Sampler</dt><dd>{detail.sampler}</dd></div>
          <div><dt>Seed</dt><dd>{detail.seed}</dd></div>
          <div><dt>Mode</dt><dd>{detail.mode}</dd></div>
          {detail.mode !== 'txt2img' && <div><dt>Strength</dt><dd>{detail.strength}</dd></div>}
          {typeof edit?.mask_image_id === 'number' && (
            <div>
              <dt>Mask</dt>
              <dd>
                <button type="button" class="link" onClick={() => onOpen(edit.mask_image_id as number)}>
                  image #{edit.mask_image_id}
                </button>
              </dd>
            </div>
          )}
          {typeof edit?.mask_blur === 'number' && <div><dt>Mask blur</dt><dd>{edit.mask_blur} px</dd></div>}
          {detail.mode === 'inpaint' && edit?.inpaint_area && <div><dt>Area</dt><dd>{edit.inpaint_area === 'masked' ? 'only masked' : 'whole image'}</dd></div>}
          {extended.length > 0 && <div><dt>Added</dt><dd>{extended.join(', ')}</dd></div>}
          {conditioning.length > 0 && <div><dt>Size conditioning</dt><dd>{conditioning.join('; ')}</dd></div>}
          {detail.negative_prompt && <div><dt>Negative prompt</dt><dd>{detail.negative_prompt}</dd></div>}
        </dl>
      </>
    );

  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div ref={dialogRef} class="dialog" role="dialog" aria-modal="true" aria-labelledby="image-title">
        <div class="dialog-head">
          <h2 id="image-title">Image #{id}</h2>
          <button ref={closeRef} type="button" class="secondary" onClick={onClose}>
            Close
          </button>
        </div>
        {error && (
          <p class="field-error" role="alert">
            {error}
          </p>
        )}
        {!detail && !error && <p class="muted">Loading…</p>}
        {detail && editing && (
          <EditPanel
            image={detail}
            project={project}
            models={models}
            client={client}
            onQueued={(text) => {
              setEditing(false);
              setNote(text);
            }}
            onBack={() => setEditing(false)}
          />
        )}
        {detail && !editing && (
          <div class="dialog-body">
            <img class="large" src={detail.url} alt={label} width={detail.width} height={detail.height} />
            <div class="details">
              {upload ? (
                <>
                  <p class="job-prompt">Uploaded by {who(detail)}</p>
                  <p class="muted small" data-testid="original-name">
                    {detail.original_name ? `File: ${detail.original_name}` : 'No file name given'}
                  </p>
                  <dl class="facts" aria-label="Parameters">
                    <div><dt>Size</dt><dd>{detail.width}×{detail.height}</dd></div>
                    <div><dt>Source</dt><dd>upload</dd></div>
                  </dl>
                </>
              ) : (
                generated()
              )}
              <section aria-label="Lineage" class="lineage">
                <h3>Lineage</h3>
                {detail.parent ? (
                  <p>
                    Made from{' '}
                    <button type="button" class="link" onClick={() => onOpen((detail.parent as Image).id)}>
                      {detail.parent.source === 'upload' ? 'upload' : 'image'} #{detail.parent.id}
                    </button>{' '}
                    by {who(detail.parent)}
                  </p>
                ) : (
                  <p class="muted">{upload ? 'An upload: the start of its lineage.' : 'An original (made from the prompt alone).'}</p>
                )}
                {children.length > 0 ? (
                  <ul class="children" aria-label="Made from this image">
                    {children.map((c) => (
                      <li key={c.id}>
                        <button type="button" class="link" onClick={() => onOpen(c.id)}>
                          image #{c.id}
                        </button>{' '}
                        by {who(c)}
                      </li>
                    ))}
                  </ul>
                ) : (
                  <p class="muted small">Nothing made from it yet.</p>
                )}
              </section>
              <div class="actions">
                <button type="button" disabled={!canEdit || !supports('variation')} onClick={() => void submit('variation')}>
                  Variation
                </button>
                <button type="button" disabled={!canEdit || !supports('remix')} onClick={remix}>
                  Remix
                </button>
                <button type="button" disabled={!canEdit || !supports('upscale')} onClick={() => void submit('upscale')}>
                  Upscale
                </button>
                {canEdit && (
                  <button
                    type="button"
                    data-testid="edit-open"
                    disabled={!canEditImage}
                    title={canEditImage ? 'Inpaint or outpaint this image' : 'No model here can inpaint or outpaint'}
                    onClick={() => {
                      setNote(null);
                      setEditing(true);
                    }}
                  >
                    Edit
                  </button>
                )}
                {!upload && (
                  <>
                    <button type="button" class="secondary" disabled={!canEdit} onClick={() => reuseIt(false)}>
                      Reuse prompt
                    </button>
                    <button type="button" class="secondary" disabled={!canEdit} onClick={() => reuseIt(true)}>
                      Reuse prompt and seed
                    </button>
                  </>
                )}
                <a class="button secondary" href={detail.url} download={`atelier-${detail.id}.png`}>
                  Download PNG
                </a>
              </div>
              <div class="reactions" role="group" aria-label="Reactions">
                {EMOJI.map((e) => (
                  <button
                    key={e}
                    type="button"
                    class="reaction"
                    aria-pressed={mine.includes(e)}
                    aria-label={`React ${e} (${counts[e] ?? 0})`}
                    disabled={!canEdit}
                    onClick={() => void react(e)}
                  >
                    {e} <span>{counts[e] ?? 0}</span>
                  </button>
                ))}
              </div>
              {note && (
                <p class="muted" role="status">
                  {note}
                </p>
              )}
            </div>
          </div>
        )}
      </div>
    </div>
  );
}
