// The pure part of the painting tools (the sketch pad and the image dialog's mask editor).
//
// Rules: a drawing is a list of operations (strokes, clear, invert) in IMAGE coordinates, so
// the canvas that shows it may be displayed at any size; undo/redo move operations between two
// stacks, and any new operation drops what was undone. The same geometry (a stroke's points
// smoothed by quadratic curves through their midpoints, flattened to segments) is drawn onto a
// canvas for display (`replay`) and rasterised in software for the mask (`rasterize`), so the
// mask PNG is exactly the image's natural size whatever the screen showed, and black/white
// (white = regenerate, as the server reads masks).
// Costs: replay is O(points); rasterising is O(pixels under each segment's brush box) plus
// O(width x height) for every clear/invert and for the PNG. No DOM access except in
// `defaultCanvas` and `canvasPng` (browser only).

export interface Point {
  x: number;
  y: number;
}

export interface Stroke {
  points: Point[];
  /** The brush's diameter, in image pixels. */
  size: number;
  /** A CSS colour (the sketch pad's ink; the mask editor paints in one colour). */
  color: string;
  /** Erases: paints the background (sketch) or makes the mask transparent again. */
  erase: boolean;
}

export type PaintOp = { kind: 'stroke'; stroke: Stroke } | { kind: 'clear' } | { kind: 'invert' };

/** What was drawn (oldest first) and what was undone (most recently undone last). */
export interface History {
  readonly done: readonly PaintOp[];
  readonly undone: readonly PaintOp[];
}

export const EMPTY_HISTORY: History = { done: [], undone: [] };

export function push(h: History, op: PaintOp): History {
  return { done: [...h.done, op], undone: [] };
}

export function undo(h: History): History {
  const last = h.done[h.done.length - 1];
  if (!last) return h;
  return { done: h.done.slice(0, -1), undone: [...h.undone, last] };
}

export function redo(h: History): History {
  const next = h.undone[h.undone.length - 1];
  if (!next) return h;
  return { done: [...h.done, next], undone: h.undone.slice(0, -1) };
}

export const canUndo = (h: History): boolean => h.done.length > 0;
export const canRedo = (h: History): boolean => h.undone.length > 0;

/**
 * Maps a pointer position (client coordinates) on an element showing an image of
 * `width` x `height` at `rect` (its on-screen box) back to image coordinates.
 */
export function toImagePoint(
  clientX: number,
  clientY: number,
  rect: { left: number; top: number; width: number; height: number },
  width: number,
  height: number,
): Point {
  const sx = rect.width > 0 ? width / rect.width : 1;
  const sy = rect.height > 0 ? height / rect.height : 1;
  return { x: (clientX - rect.left) * sx, y: (clientY - rect.top) * sy };
}

const MAX_SUBDIVISIONS = 16;

/**
 * The polyline drawn for a stroke's points: a quadratic curve through the midpoints of
 * successive points (each point a control point), flattened into segments of about
 * `tolerance` pixels, so fast pointer moves still give round lines.
 */
export function smoothPath(points: readonly Point[], tolerance = 2): Point[] {
  if (points.length <= 2) return points.map((p) => ({ ...p }));
  const first = points[0] as Point;
  const out: Point[] = [{ ...first }];
  let from = first;
  for (let i = 1; i < points.length - 1; i++) {
    const c = points[i] as Point;
    const n = points[i + 1] as Point;
    const to = { x: (c.x + n.x) / 2, y: (c.y + n.y) / 2 };
    const length = Math.hypot(c.x - from.x, c.y - from.y) + Math.hypot(to.x - c.x, to.y - c.y);
    const parts = Math.max(1, Math.min(MAX_SUBDIVISIONS, Math.ceil(length / tolerance)));
    for (let k = 1; k <= parts; k++) {
      const t = k / parts;
      const u = 1 - t;
      out.push({ x: u * u * from.x + 2 * u * t * c.x + t * t * to.x, y: u * u * from.y + 2 * u * t * c.y + t * t * to.y });
    }
    from = to;
  }
  out.push({ ...(points[points.length - 1] as Point) });
  return out;
}

/** The part of CanvasRenderingContext2D the painting tools use (a fake one in tests). */
export interface Ctx2D {
  globalCompositeOperation: string;
  fillStyle: string | CanvasGradient | CanvasPattern;
  strokeStyle: string | CanvasGradient | CanvasPattern;
  lineWidth: number;
  lineCap: CanvasLineCap;
  lineJoin: CanvasLineJoin;
  setTransform(a: number, b: number, c: number, d: number, e: number, f: number): void;
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  arc(x: number, y: number, r: number, start: number, end: number): void;
  stroke(): void;
  fill(): void;
  fillRect(x: number, y: number, w: number, h: number): void;
  clearRect(x: number, y: number, w: number, h: number): void;
}

export interface ReplayOptions {
  /** The image's size (the drawing's coordinates). */
  width: number;
  height: number;
  /** Canvas pixels per image pixel (the canvas may be smaller than the image). */
  scale: number;
  /**
   * The sketch pad's paper colour: clear fills it and erasing paints it. Null for the mask
   * layer: clear and erase make it transparent.
   */
  background: string | null;
  /** The colour inverting fills with (the mask layer's paint). */
  invertColor?: string;
}

/** Draws one operation. Leaves the context in source-over at `scale`. */
export function drawOp(ctx: Ctx2D, op: PaintOp, o: ReplayOptions): void {
  ctx.setTransform(o.scale, 0, 0, o.scale, 0, 0);
  ctx.globalCompositeOperation = 'source-over';
  if (op.kind === 'clear') {
    if (o.background === null) {
      ctx.clearRect(0, 0, o.width, o.height);
    } else {
      ctx.fillStyle = o.background;
      ctx.fillRect(0, 0, o.width, o.height);
    }
    return;
  }
  if (op.kind === 'invert') {
    // xor with an opaque fill turns alpha a into 1 - a: painted and unpainted swap.
    ctx.globalCompositeOperation = 'xor';
    ctx.fillStyle = o.invertColor ?? '#ffffff';
    ctx.fillRect(0, 0, o.width, o.height);
    ctx.globalCompositeOperation = 'source-over';
    return;
  }
  const s = op.stroke;
  const erasing = s.erase && o.background === null;
  const color = s.erase && o.background !== null ? o.background : s.color;
  if (erasing) ctx.globalCompositeOperation = 'destination-out';
  const path = smoothPath(s.points);
  const start = path[0];
  if (start) {
    ctx.beginPath();
    if (path.length === 1) {
      // A tap: a dot (a zero-length line is not stroked).
      ctx.fillStyle = color;
      ctx.arc(start.x, start.y, s.size / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.strokeStyle = color;
      ctx.lineWidth = s.size;
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      ctx.moveTo(start.x, start.y);
      for (const p of path.slice(1)) ctx.lineTo(p.x, p.y);
      ctx.stroke();
    }
  }
  ctx.globalCompositeOperation = 'source-over';
}

/** Redraws a whole drawing from scratch (the paper, or a transparent layer, first). */
export function replay(ctx: Ctx2D, ops: readonly PaintOp[], o: ReplayOptions): void {
  drawOp(ctx, { kind: 'clear' }, o);
  for (const op of ops) drawOp(ctx, op, o);
}

/** A mask as one byte per pixel: 255 painted (regenerate), 0 not. */
export interface Coverage {
  width: number;
  height: number;
  data: Uint8Array;
}

function paintSegment(c: Coverage, a: Point, b: Point, r: number, value: number): void {
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r));
  const x1 = Math.min(c.width - 1, Math.ceil(Math.max(a.x, b.x) + r));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r));
  const y1 = Math.min(c.height - 1, Math.ceil(Math.max(a.y, b.y) + r));
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const r2 = r * r;
  for (let y = y0; y <= y1; y++) {
    const py = y + 0.5; // pixel centres
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5;
      const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - a.x) * dx + (py - a.y) * dy) / len2)) : 0;
      const ex = px - (a.x + t * dx);
      const ey = py - (a.y + t * dy);
      if (ex * ex + ey * ey <= r2) c.data[y * c.width + x] = value;
    }
  }
}

/**
 * The mask of a drawing at `width` x `height` (image coordinates, one pixel each): a pixel is
 * painted when its centre lies within half the brush of the stroke's path.
 */
export function rasterize(ops: readonly PaintOp[], width: number, height: number): Coverage {
  const c: Coverage = { width, height, data: new Uint8Array(width * height) };
  for (const op of ops) {
    if (op.kind === 'clear') {
      c.data.fill(0);
    } else if (op.kind === 'invert') {
      for (let i = 0; i < c.data.length; i++) c.data[i] = 255 - (c.data[i] as number);
    } else {
      const s = op.stroke;
      const value = s.erase ? 0 : 255;
      const r = Math.max(0.5, s.size / 2);
      const path = smoothPath(s.points);
      for (let i = 0; i < path.length; i++) {
        const a = path[i] as Point;
        paintSegment(c, a, path[i + 1] ?? a, r, value);
      }
    }
  }
  return c;
}

/** How many pixels are painted. */
export function paintedPixels(c: Coverage): number {
  let n = 0;
  for (const v of c.data) if (v !== 0) n++;
  return n;
}

/** The part of an HTMLCanvasElement the PNG export uses (a fake one in tests). */
export interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): Pick<CanvasRenderingContext2D, 'createImageData' | 'putImageData'> | null;
  toBlob(callback: (blob: Blob | null) => void, type?: string): void;
}

export function defaultCanvas(): CanvasLike {
  return document.createElement('canvas') as unknown as CanvasLike;
}

/** A canvas's pixels as a PNG. */
export function canvasPng(canvas: CanvasLike): Promise<Blob> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The browser could not encode the drawing.'))), 'image/png'),
  );
}

/** A mask as an opaque black/white PNG of its own size: white where painted. */
export function coveragePng(cov: Coverage, makeCanvas: () => CanvasLike = defaultCanvas): Promise<Blob> {
  const canvas = makeCanvas();
  canvas.width = cov.width;
  canvas.height = cov.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return Promise.reject(new Error('This browser cannot draw on a canvas.'));
  const img = ctx.createImageData(cov.width, cov.height);
  const px = img.data;
  for (let i = 0; i < cov.data.length; i++) {
    const v = cov.data[i] as number;
    px[i * 4] = v;
    px[i * 4 + 1] = v;
    px[i * 4 + 2] = v;
    px[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvasPng(canvas);
}

/** The mask of a drawing at exactly `width` x `height` (the image's natural size), as a PNG. */
export function maskPng(
  ops: readonly PaintOp[],
  width: number,
  height: number,
  makeCanvas: () => CanvasLike = defaultCanvas,
): Promise<Blob> {
  return coveragePng(rasterize(ops, width, height), makeCanvas);
}

/** A brush size that suits an image: about a twentieth of its longer side, at least 4 px. */
export function defaultBrush(width: number, height: number): number {
  return Math.max(4, Math.round(Math.max(width, height) / 20));
}
