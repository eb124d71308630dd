// The mask editor of the image dialog's Edit mode: the image with a translucent layer on top on
// which one paints what the model regenerates (brush and size, eraser, clear, invert, undo and
// redo, also by Ctrl+Z / Ctrl+Shift+Z). The strokes are kept in the image's own coordinates
// (state/paint.ts), so the layer can be shown at any size and the mask is built at the
// image's natural size; the layer's canvas keeps at most MAX_LAYER pixels on its longer side.
// Also the outpaint preview: the image on its enlarged canvas.
import { useRef, useState } from 'preact/hooks';
import { canRedo, canUndo, defaultBrush, push, redo, undo, type History } from '../state/paint';
import type { Extend } from '../state/draft';
import { usePaintCanvas } from './usePaintCanvas';

const MAX_LAYER = 1024;
/** What painted parts look like (the layer is shown half transparent). */
export const MASK_COLOR = '#ff2e63';

interface Props {
  src: string;
  alt: string;
  /** The image's natural size. */
  width: number;
  height: number;
  history: History;
  onChange: (h: History) => void;
  disabled?: boolean;
  /** The id of the error shown for the mask, when there is one. */
  errorId?: string | undefined;
}

export function MaskEditor({ src, alt, width, height, history, onChange, disabled = false, errorId }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const initial = defaultBrush(width, height);
  const [size, setSize] = useState(initial);
  const [erase, setErase] = useState(false);
  const scale = Math.min(1, MAX_LAYER / Math.max(width, height));
  const handlers = usePaintCanvas({
    canvas,
    replay: { width, height, scale, background: null, invertColor: MASK_COLOR },
    history,
    onChange,
    brush: { size, color: MASK_COLOR, erase },
    disabled,
  });
  const maxSize = Math.max(64, initial * 4);

  return (
    <div class="mask-editor">
      <div class="mask-stage">
        <img src={src} alt={alt} width={width} height={height} draggable={false} />
        <canvas
          ref={canvas}
          class="mask-layer"
          data-testid="mask-canvas"
          width={Math.max(1, Math.round(width * scale))}
          height={Math.max(1, Math.round(height * scale))}
          role="img"
          aria-label="Mask: paint over the parts to regenerate"
          aria-invalid={errorId ? true : undefined}
          aria-describedby={errorId}
          {...handlers}
        />
      </div>
      <div class="paint-tools" role="toolbar" aria-label="Mask tools">
        <button type="button" class="secondary small" aria-pressed={!erase} onClick={() => setErase(false)} disabled={disabled}>
          Brush
        </button>
        <button type="button" class="secondary small" aria-pressed={erase} onClick={() => setErase(true)} disabled={disabled}>
          Eraser
        </button>
        <label class="brush-size">
          <span>Brush size</span>
          <input
            type="range"
            min={1}
            max={maxSize}
            value={size}
            disabled={disabled}
            onInput={(e) => setSize(Number(e.currentTarget.value))}
          />
          <span class="muted small">{size} px</span>
        </label>
        <button type="button" class="secondary small" disabled={disabled || !canUndo(history)} onClick={() => onChange(undo(history))}>
          Undo
        </button>
        <button type="button" class="secondary small" disabled={disabled || !canRedo(history)} onClick={() => onChange(redo(history))}>
          Redo
        </button>
        <button
          type="button"
          class="secondary small"
          disabled={disabled || !canUndo(history)}
          onClick={() => onChange(push(history, { kind: 'clear' }))}
        >
          Clear
        </button>
        <button type="button" class="secondary small" disabled={disabled} onClick={() => onChange(push(history, { kind: 'invert' }))}>
          Invert
        </button>
      </div>
    </div>
  );
}

/** The image on the canvas an outpaint makes: the added border shown as a checkerboard. */
export function OutpaintPreview({ src, alt, width, height, extend }: { src: string; alt: string; width: number; height: number; extend: Extend }) {
  const ok = (v: number) => (Number.isFinite(v) && v > 0 ? v : 0);
  const [l, r, t, b] = [ok(extend.left), ok(extend.right), ok(extend.top), ok(extend.bottom)];
  const w = width + l + r;
  const h = height + t + b;
  const pct = (v: number, of: number) => `${(v / of) * 100}%`;
  return (
    <div class="outpaint-stage" role="img" aria-label={`The image on a ${w}×${h} canvas`} style={{ aspectRatio: `${w} / ${h}` }}>
      <img
        src={src}
        alt={alt}
        draggable={false}
        style={{ left: pct(l, w), top: pct(t, h), width: pct(width, w), height: pct(height, h) }}
      />
    </div>
  );
}
