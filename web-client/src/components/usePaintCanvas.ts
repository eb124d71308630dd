// Drawing on a canvas with pointer events (mouse, touch, pen), shared by the sketch pad and the
// mask editor. Rules: points are mapped back to image coordinates from the canvas's on-screen
// box, so the canvas may be shown at any size; a stroke becomes one history entry when the
// pointer lifts (or is cancelled); the picture is redrawn from the history (state/paint.ts) at
// most once per animation frame while drawing. Ctrl/Cmd+Z undoes, Ctrl/Cmd+Shift+Z and Ctrl+Y
// redo, except while typing in a field.
import { useEffect, useRef } from 'preact/hooks';
import type { RefObject } from 'preact';
import {
  push,
  redo,
  replay,
  toImagePoint,
  undo,
  type Ctx2D,
  type History,
  type Point,
  type ReplayOptions,
  type Stroke,
} from '../state/paint';

export interface Brush {
  size: number;
  color: string;
  erase: boolean;
}

interface Options {
  canvas: RefObject<HTMLCanvasElement>;
  /** The drawing's (image) size and how it is drawn (see ReplayOptions). */
  replay: ReplayOptions;
  history: History;
  onChange: (h: History) => void;
  brush: Brush;
  disabled?: boolean;
}

export interface PaintHandlers {
  onPointerDown: (e: PointerEvent) => void;
  onPointerMove: (e: PointerEvent) => void;
  onPointerUp: (e: PointerEvent) => void;
  onPointerCancel: (e: PointerEvent) => void;
}

export function usePaintCanvas(o: Options): PaintHandlers {
  const latest = useRef(o);
  latest.current = o;
  const current = useRef<{ id: number; stroke: Stroke } | null>(null);
  const frame = useRef<number | null>(null);

  const draw = () => {
    frame.current = null;
    const { canvas, replay: opts, history } = latest.current;
    const ctx = canvas.current?.getContext('2d') as Ctx2D | null | undefined;
    if (!ctx) return;
    const s = current.current?.stroke;
    replay(ctx, s ? [...history.done, { kind: 'stroke', stroke: s }] : history.done, opts);
  };
  const schedule = () => {
    if (frame.current === null) frame.current = requestAnimationFrame(draw);
  };

  // Redrawn whenever the history or the canvas size changes.
  useEffect(draw, [o.history, o.replay.width, o.replay.height, o.replay.scale]);
  useEffect(() => () => {
    if (frame.current !== null) cancelAnimationFrame(frame.current);
  }, []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || latest.current.disabled) return;
      const t = e.target as HTMLElement | null;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
      const key = e.key.toLowerCase();
      const { history, onChange } = latest.current;
      if (key === 'z' && !e.shiftKey) {
        e.preventDefault();
        onChange(undo(history));
      } else if ((key === 'z' && e.shiftKey) || key === 'y') {
        e.preventDefault();
        onChange(redo(history));
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  const pointOf = (e: PointerEvent): Point => {
    const el = latest.current.canvas.current;
    const { width, height } = latest.current.replay;
    const rect = el ? el.getBoundingClientRect() : { left: 0, top: 0, width, height };
    return toImagePoint(e.clientX, e.clientY, rect, width, height);
  };

  const finish = (e: PointerEvent, keep: boolean) => {
    const c = current.current;
    if (!c || c.id !== e.pointerId) return;
    current.current = null;
    if (keep) {
      const { history, onChange } = latest.current;
      onChange(push(history, { kind: 'stroke', stroke: c.stroke }));
    } else {
      schedule();
    }
  };

  return {
    onPointerDown: (e) => {
      if (latest.current.disabled || current.current) return;
      if (e.pointerType === 'mouse' && e.button !== 0) return;
      e.preventDefault();
      (e.currentTarget as Element | null)?.setPointerCapture?.(e.pointerId);
      const { size, color, erase } = latest.current.brush;
      current.current = { id: e.pointerId, stroke: { points: [pointOf(e)], size, color, erase } };
      schedule();
    },
    onPointerMove: (e) => {
      const c = current.current;
      if (!c || c.id !== e.pointerId) return;
      // Every sample since the last event, for smooth lines on fast moves.
      const samples = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
      for (const s of samples.length > 0 ? samples : [e]) c.stroke.points.push(pointOf(s));
      schedule();
    },
    onPointerUp: (e) => finish(e, true),
    onPointerCancel: (e) => finish(e, false),
  };
}
