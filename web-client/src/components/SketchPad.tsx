// The sketch pad: a dialog with a 512×512 sheet of white paper, a brush (size, a few colours and
// any other from the colour input), an eraser, undo/redo (also Ctrl+Z / Ctrl+Shift+Z) and
// clear; "Use as starting point" uploads the drawing as a PNG into the project and hands the
// new image over (the room starts a remix from it). The sheet scales down on small screens;
// strokes are mapped back to its 512×512 pixels (usePaintCanvas).
import { useRef, useState } from 'preact/hooks';
import type { Image } from '../api/models';
import { uploadImage, uploadProblem } from '../api/uploads';
import { canRedo, canUndo, canvasPng, EMPTY_HISTORY, push, redo, replay, undo, type Ctx2D, type History } from '../state/paint';
import { describeError, FieldError } from './FieldError';
import { useModal } from './useModal';
import { usePaintCanvas } from './usePaintCanvas';

export const SKETCH_SIZE = 512;
const PAPER = '#ffffff';
const COLOURS: readonly { name: string; value: string }[] = [
  { name: 'Black', value: '#1f1a2e' },
  { name: 'Red', value: '#e4453a' },
  { name: 'Orange', value: '#f28c28' },
  { name: 'Yellow', value: '#f2c94c' },
  { name: 'Green', value: '#2f9e62' },
  { name: 'Blue', value: '#2f6fd1' },
  { name: 'Purple', value: '#7a4fd1' },
  { name: 'Brown', value: '#7a5230' },
];

interface Props {
  projectId: number;
  onUploaded: (image: Image) => void;
  onClose: () => void;
}

export function SketchPad({ projectId, onUploaded, onClose }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const dialogRef = useRef<HTMLDivElement>(null);
  const [history, setHistory] = useState<History>(EMPTY_HISTORY);
  const [color, setColor] = useState(COLOURS[0]?.value ?? '#000000');
  const [size, setSize] = useState(8);
  const [erase, setErase] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const opts = { width: SKETCH_SIZE, height: SKETCH_SIZE, scale: 1, background: PAPER };
  const handlers = usePaintCanvas({
    canvas,
    replay: opts,
    history,
    onChange: setHistory,
    brush: { size, color, erase },
    disabled: busy,
  });
  useModal(dialogRef, () => !busy && onClose());

  const use = async () => {
    const el = canvas.current;
    const ctx = el?.getContext('2d') as Ctx2D | null | undefined;
    if (!el || !ctx || busy) return;
    setBusy(true);
    setError(null);
    try {
      replay(ctx, history.done, opts); // exactly the history, nothing half drawn
      const png = await canvasPng(el);
      onUploaded(await uploadImage(projectId, png, { filename: 'sketch.png' }));
    } catch (err) {
      setError(uploadProblem(err) ?? describeError(err));
      setBusy(false);
    }
  };

  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && !busy && onClose()}>
      <div ref={dialogRef} class="dialog sketch-dialog" role="dialog" aria-modal="true" aria-labelledby="sketch-title">
        <div class="dialog-head">
          <h2 id="sketch-title">Sketch</h2>
          <button type="button" class="secondary" onClick={onClose} disabled={busy}>
            Close
          </button>
        </div>
        <p class="muted small">Draw a starting point: the model keeps its shapes and your prompt does the rest.</p>
        <canvas
          ref={canvas}
          class="sketch-canvas"
          data-testid="sketch-canvas"
          width={SKETCH_SIZE}
          height={SKETCH_SIZE}
          role="img"
          aria-label="Sketch: draw with the mouse, a finger or a pen"
          {...handlers}
        />
        <div class="paint-tools" role="toolbar" aria-label="Sketch tools">
          <div class="swatches" role="group" aria-label="Colour">
            {COLOURS.map((c) => (
              <button
                key={c.value}
                type="button"
                class={`swatch swatch-${c.name.toLowerCase()}`}
                aria-label={c.name}
                aria-pressed={!erase && color === c.value}
                onClick={() => {
                  setColor(c.value);
                  setErase(false);
                }}
              />
            ))}
            <label class="colour-input">
              <span class="sr-only">Other colour</span>
              <input
                type="color"
                value={color}
                onInput={(e) => {
                  setColor(e.currentTarget.value);
                  setErase(false);
                }}
              />
            </label>
          </div>
          <button type="button" class="secondary small" aria-pressed={erase} onClick={() => setErase(!erase)}>
            Eraser
          </button>
          <label class="brush-size">
            <span>Brush size</span>
            <input type="range" min={1} max={64} value={size} onInput={(e) => setSize(Number(e.currentTarget.value))} />
            <span class="muted small">{size} px</span>
          </label>
          <button type="button" class="secondary small" disabled={!canUndo(history)} onClick={() => setHistory(undo(history))}>
            Undo
          </button>
          <button type="button" class="secondary small" disabled={!canRedo(history)} onClick={() => setHistory(redo(history))}>
            Redo
          </button>
          <button type="button" class="secondary small" disabled={!canUndo(history)} onClick={() => setHistory(push(history, { kind: 'clear' }))}>
            Clear
          </button>
        </div>
        <FieldError id="sketch-error" message={error} />
        <div class="actions">
          <button type="button" onClick={() => void use()} disabled={busy || !canUndo(history)}>
            {busy ? 'Uploading…' : 'Use as starting point'}
          </button>
        </div>
      </div>
    </div>
  );
}
