// A project room at /p/{id}: the prompt box, uploads and sketches, the live feed, presence and
// members.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { isApiError } from '../api/client';
import type { Image, ModelCatalog, User } from '../api/models';
import { rest } from '../api/rest';
import { uploadImage } from '../api/uploads';
import { describeError } from '../components/FieldError';
import { Feed } from '../components/Feed';
import { ImageDialog } from '../components/ImageDialog';
import { MembersPanel } from '../components/MembersPanel';
import { ConnectionIndicator, PresenceBar } from '../components/Presence';
import { PromptBox } from '../components/PromptBox';
import { SketchPad } from '../components/SketchPad';
import { UploadDrop, UploadTools, usePasteUpload } from '../components/UploadDrop';
import type { LiveClient } from '../live/live_client';
import { draft } from '../state/draft';
import { RoomStore } from '../state/room';
import { remixDraft, UploadQueue } from '../state/uploads';
import { NotFound } from './NotFound';

let modelsCache: Promise<ModelCatalog> | null = null;
function loadModels(): Promise<ModelCatalog> {
  modelsCache ??= rest.catalog().catch((err: unknown) => {
    modelsCache = null;
    throw err;
  });
  return modelsCache;
}

function previewUrl(bytes: Uint8Array, format: string): string {
  return URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type: format === 'webp' ? 'image/webp' : 'image/jpeg' }));
}

export function RoomPage({ project, user, client }: { project: number; user: User; client: LiveClient }) {
  const store = useMemo(() => new RoomStore(user.id, previewUrl, (u) => URL.revokeObjectURL(u)), [project, user.id]);
  const [state, setState] = useState<'loading' | 'ready' | 'not_found' | 'error'>('loading');
  const [loadError, setLoadError] = useState<string | null>(null);
  const [catalog, setCatalog] = useState<ModelCatalog>({ models: [], loras: [] });
  const models = catalog.models;
  const [openImage, setOpenImage] = useState<number | null>(null);
  const [renaming, setRenaming] = useState(false);
  const [newName, setNewName] = useState('');
  const [renameError, setRenameError] = useState<string | null>(null);
  const [sketching, setSketching] = useState(false);
  const [uploadNote, setUploadNote] = useState<string | null>(null);
  // Uploads show up in the feed through their image.uploaded event, like everyone else's.
  const uploads = useMemo(() => new UploadQueue((file) => uploadImage(project, file)), [project]);
  useEffect(() => () => uploads.dispose(), [uploads]);
  const canUpload = state === 'ready' && store.canEdit.value && !store.ended.value;
  usePasteUpload(canUpload, (files) => uploads.add(files));

  useEffect(() => {
    let live = true;
    setState('loading');
    Promise.all([rest.project(project), rest.members(project)])
      .then(([p, members]) => {
        if (!live) return;
        store.project.value = p;
        store.role.value = p.role;
        // By name, as the room keeps them when members change (the server pages by user id).
        store.members.value = [...members].sort((a, b) => a.username.localeCompare(b.username));
        setState('ready');
      })
      .catch((err) => {
        if (!live) return;
        if (isApiError(err) && (err.status === 404 || err.status === 403)) setState('not_found');
        else {
          setLoadError(describeError(err));
          setState('error');
        }
      });
    loadModels()
      .then((c) => live && setCatalog(c))
      .catch((err) => live && setLoadError(describeError(err)));
    return () => {
      live = false;
    };
  }, [project]);

  useEffect(() => {
    if (state !== 'ready') return;
    const stop = client.subscribe(project, 0, {
      onEvent: (e) => store.apply(e),
      onSubscribed: (m) => {
        store.role.value = m.role;
      },
      onProgress: (m) => store.onProgress(m.job, m.step, m.steps),
      onPreview: (f) => store.onPreview(f.job, f.image, f.format),
      onPresence: (m) => {
        store.presence.value = m.members;
      },
      onUnsubscribed: (m) => {
        store.ended.value = m.reason;
      },
      onRefused: () => setState('not_found'),
    });
    return () => {
      stop();
      store.dispose();
    };
  }, [state, project, client]);

  useEffect(() => {
    const name = store.project.value?.name;
    document.title = name ? `${name} · Atelier` : 'Atelier';
    return () => {
      document.title = 'Atelier';
    };
  }, [store.project.value?.name]);

  // A new room starts with a fresh prompt box.
  useEffect(() => {
    draft.value = null;
    setSketching(false);
    setUploadNote(null);
  }, [project]);

  if (state === 'not_found') return <NotFound what="project" />;
  if (state === 'error') {
    return (
      <div class="room">
        <h1>Cannot open this project</h1>
        <p class="field-error" role="alert">
          {loadError}
        </p>
      </div>
    );
  }
  const p = store.project.value;
  if (state === 'loading' || !p) return <p class="muted room">Loading project…</p>;
  if (store.ended.value) {
    return (
      <div class="room">
        <h1>{p.name}</h1>
        <p class="field-error" role="alert">
          {store.ended.value === 'project_deleted'
            ? 'This project was deleted.'
            : 'You are no longer a member of this project.'}
        </p>
      </div>
    );
  }

  // The sketch pad's drawing is uploaded; the prompt box then remixes it.
  const remixSketch = (image: Image) => {
    setSketching(false);
    const next = remixDraft(draft.value, image, models);
    if (!next) {
      setUploadNote(`Your sketch is upload #${image.id}; no model here can remix it.`);
      return;
    }
    setUploadNote(null);
    draft.value = next;
    // After the sketch pad has closed and handed focus back.
    setTimeout(() => document.getElementById('prompt')?.focus(), 0);
  };

  const rename = async (e: Event) => {
    e.preventDefault();
    setRenameError(null);
    try {
      const updated = await rest.renameProject(project, newName.trim());
      store.project.value = { ...p, name: updated.name };
      setRenaming(false);
    } catch (err) {
      setRenameError(describeError(err));
    }
  };

  return (
    <UploadDrop class="room" enabled={canUpload} onFiles={(files) => uploads.add(files)}>
      <header class="room-head">
        {renaming ? (
          <form class="inline-form" onSubmit={rename}>
            <label for="rename">Project name</label>
            <input id="rename" value={newName} maxLength={100} onInput={(e) => setNewName(e.currentTarget.value)} required />
            <button type="submit">Save</button>
            <button type="button" class="secondary" onClick={() => setRenaming(false)}>
              Cancel
            </button>
            {renameError && (
              <p class="field-error" role="alert">
                {renameError}
              </p>
            )}
          </form>
        ) : (
          <h1>
            {p.name}
            {store.role.value === 'owner' && (
              <button
                type="button"
                class="link small"
                onClick={() => {
                  setNewName(p.name);
                  setRenaming(true);
                }}
              >
                Rename
              </button>
            )}
          </h1>
        )}
        <ConnectionIndicator status={client.status.value} />
      </header>
      <PresenceBar store={store} selfId={user.id} />
      {loadError && (
        <p class="field-error" role="alert">
          {loadError}
        </p>
      )}
      <div class="room-body">
        <div class="room-main">
          <PromptBox project={project} models={models} loraFiles={catalog.loras} client={client} canGenerate={store.canEdit.value} />
          {canUpload && <UploadTools queue={uploads} onSketch={() => setSketching(true)} note={uploadNote} />}
          <Feed store={store} client={client} selfId={user.id} onOpenImage={setOpenImage} />
        </div>
        <aside class="room-side">
          <MembersPanel project={project} store={store} selfId={user.id} />
        </aside>
      </div>
      {openImage !== null && (
        <ImageDialog
          id={openImage}
          project={project}
          store={store}
          client={client}
          models={models}
          onOpen={setOpenImage}
          onClose={() => setOpenImage(null)}
        />
      )}
      {sketching && canUpload && (
        <SketchPad projectId={project} onUploaded={remixSketch} onClose={() => setSketching(false)} />
      )}
    </UploadDrop>
  );
}
