// Bringing images into the room: the whole room accepts dropped files (with an overlay while
// something is dragged over it), an image pasted outside text fields is uploaded, and the Upload
// button opens the file picker. Every file goes to the room's UploadQueue, which shows what is
// being sent and what failed.
//
// Rules: for a viewer (`enabled` false) drops and pastes do nothing, and no controls are shown;
// a dropped file never makes the browser leave the room to show it, for anyone.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { UPLOAD_ACCEPT } from '../api/uploads';
import type { UploadQueue } from '../state/uploads';

const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');

/** The room's area that accepts dropped files (`class` is the area's own class). */
export function UploadDrop(props: {
  enabled: boolean;
  onFiles: (files: File[]) => void;
  class?: string;
  children: ComponentChildren;
}) {
  const { enabled, onFiles, children } = props;
  const [dragging, setDragging] = useState(false);
  // dragenter and dragleave come in pairs for every child crossed: count them.
  const depth = useRef(0);

  useEffect(() => {
    // A file dropped just outside the room (the top bar, a margin) would otherwise replace the
    // page with the file.
    const guard = (e: DragEvent) => {
      if (hasFiles(e)) e.preventDefault();
    };
    window.addEventListener('dragover', guard);
    window.addEventListener('drop', guard);
    return () => {
      window.removeEventListener('dragover', guard);
      window.removeEventListener('drop', guard);
    };
  }, []);
  useEffect(() => {
    if (!enabled) setDragging(false);
  }, [enabled]);

  return (
    <div
      class={props.class}
      data-testid="upload-drop"
      onDragEnter={(e) => {
        if (!hasFiles(e) || !enabled) return;
        depth.current += 1;
        setDragging(true);
      }}
      onDragOver={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        if (e.dataTransfer) e.dataTransfer.dropEffect = enabled ? 'copy' : 'none';
      }}
      onDragLeave={(e) => {
        if (!hasFiles(e) || !enabled) return;
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) setDragging(false);
      }}
      onDrop={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth.current = 0;
        setDragging(false);
        const files = Array.from(e.dataTransfer?.files ?? []);
        if (enabled && files.length > 0) onFiles(files);
      }}
    >
      {children}
      {dragging && (
        <div class="drop-overlay" aria-hidden="true">
          <p>Drop images to bring them into the room</p>
        </div>
      )}
    </div>
  );
}

function isTextField(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) return !['button', 'checkbox', 'radio', 'range', 'submit', 'reset', 'file'].includes(target.type);
  return false;
}

/**
 * Uploads the image files of a paste made outside text fields and dialogs (those keep their
 * own paste), while `enabled`.
 */
export function usePasteUpload(enabled: boolean, onFiles: (files: File[]) => void): void {
  const handler = useRef(onFiles);
  handler.current = onFiles;
  useEffect(() => {
    if (!enabled) return;
    const onPaste = (e: ClipboardEvent) => {
      if (isTextField(e.target)) return;
      if (e.target instanceof Element && e.target.closest('[role=dialog]')) return;
      const files = Array.from(e.clipboardData?.files ?? []).filter((f) => f.type.startsWith('image/'));
      if (files.length === 0) return;
      e.preventDefault();
      handler.current(files);
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, [enabled]);
}

/** The Upload (file picker) and Sketch buttons, and the state of the room's uploads. */
export function UploadTools({ queue, onSketch, note }: { queue: UploadQueue; onSketch: () => void; note?: string | null }) {
  const input = useRef<HTMLInputElement>(null);
  const current = queue.current.value;
  const waiting = queue.waiting.value.length;
  const failures = queue.failures.value;
  return (
    <section class="upload-tools" aria-label="Bring images in">
      <div class="row">
        <button type="button" class="secondary" onClick={() => input.current?.click()}>
          Upload
        </button>
        <input
          ref={input}
          type="file"
          accept={UPLOAD_ACCEPT}
          multiple
          hidden
          data-testid="upload-input"
          onChange={(e) => {
            const files = Array.from(e.currentTarget.files ?? []);
            e.currentTarget.value = ''; // the same file may be picked again
            if (files.length > 0) queue.add(files);
          }}
        />
        <button type="button" class="secondary" data-testid="sketch-open" onClick={onSketch}>
          Sketch
        </button>
        <span class="muted small">or drop or paste images anywhere in the room</span>
      </div>
      <div class="upload-status" role="status" aria-live="polite">
        {current && (
          <>
            <p class="small">
              Uploading <span class="upload-name">{current.name}</span>…
              {waiting > 0 && ` (${waiting} more waiting)`}
            </p>
            <progress aria-label={`Uploading ${current.name}`} />
          </>
        )}
        {note && <p class="muted small">{note}</p>}
      </div>
      {failures.length > 0 && (
        <ul class="upload-errors" aria-label="Uploads that failed">
          {failures.map((f) => (
            <li key={f.key}>
              <span class="field-error" role="alert">
                {f.message}
              </span>
              {f.retryable && (
                <button type="button" class="link small" onClick={() => queue.retry(f.key)}>
                  Try again
                </button>
              )}
              <button type="button" class="link small" aria-label={`Dismiss: ${f.message}`} onClick={() => queue.dismiss(f.key)}>
                Dismiss
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
