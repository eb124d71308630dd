// The painting tools' pure part: strokes rasterised into the expected pixels, undo/redo,
// clear and invert, the replay onto a canvas context, and the mask PNG at the image's natural
// size whatever size the canvas was shown at.
import { describe, expect, it } from 'vitest';
import {
  canRedo,
  canUndo,
  EMPTY_HISTORY,
  maskPng,
  paintedPixels,
  push,
  rasterize,
  redo,
  replay,
  smoothPath,
  toImagePoint,
  undo,
  type CanvasLike,
  type Ctx2D,
  type PaintOp,
  type Point,
} from './paint';

const stroke = (points: Point[], size: number, erase = false): PaintOp => ({
  kind: 'stroke',
  stroke: { points, size, color: '#e0245e', erase },
});

/** A coverage as rows of '#' (painted) and '.' (not). */
function picture(ops: PaintOp[], w: number, h: number): string[] {
  const c = rasterize(ops, w, h);
  const rows: string[] = [];
  for (let y = 0; y < h; y++) {
    let row = '';
    for (let x = 0; x < w; x++) row += c.data[y * w + x] ? '#' : '.';
    rows.push(row);
  }
  return rows;
}

describe('rasterize', () => {
  it('paints every pixel whose centre lies within half the brush of the path', () => {
    // Size 3 along the centres of row 5, from column 2 to 8: rows 4-6, round ends to columns 1 and 9.
    expect(picture([stroke([{ x: 2.5, y: 5.5 }, { x: 8.5, y: 5.5 }], 3)], 12, 9)).toEqual([
      '............',
      '............',
      '............',
      '............',
      '.#########..',
      '.#########..',
      '.#########..',
      '............',
      '............',
    ]);
  });

  it('paints a dot for a tap and clips at the edges', () => {
    expect(picture([stroke([{ x: 0.5, y: 0.5 }], 5)], 5, 4)).toEqual(['###..', '###..', '##...', '.....']);
  });

  it('erases, clears and inverts', () => {
    const line = stroke([{ x: 0, y: 2.5 }, { x: 6, y: 2.5 }], 1);
    const rub = stroke([{ x: 2.5, y: 2.5 }, { x: 3.5, y: 2.5 }], 1, true);
    expect(picture([line, rub], 6, 4)).toEqual(['......', '......', '##..##', '......']);
    expect(picture([line, rub, { kind: 'invert' }], 6, 4)).toEqual(['######', '######', '..##..', '######']);
    expect(picture([line, { kind: 'clear' }], 6, 4)).toEqual(['......', '......', '......', '......']);
    expect(paintedPixels(rasterize([{ kind: 'clear' }, { kind: 'invert' }], 6, 4))).toBe(24);
  });

  it('follows a smoothed path that keeps both ends', () => {
    const points = [{ x: 0, y: 0 }, { x: 10, y: 0 }, { x: 10, y: 10 }, { x: 20, y: 10 }];
    const path = smoothPath(points);
    expect(path[0]).toEqual({ x: 0, y: 0 });
    expect(path[path.length - 1]).toEqual({ x: 20, y: 10 });
    expect(path).toContainEqual({ x: 10, y: 5 }); // through the midpoints between the points
    expect(path).toContainEqual({ x: 15, y: 10 });
    expect(path).not.toContainEqual({ x: 10, y: 0 }); // corners are rounded off
    // Every segment is short: the curve is drawn, not cut.
    for (let i = 1; i < path.length; i++) {
      const a = path[i - 1] as Point;
      const b = path[i] as Point;
      expect(Math.hypot(b.x - a.x, b.y - a.y)).toBeLessThanOrEqual(5);
    }
  });
});

describe('history', () => {
  it('undoes and redoes, and a new stroke drops what was undone', () => {
    const a = stroke([{ x: 1, y: 1 }], 2);
    const b = stroke([{ x: 3, y: 3 }], 2);
    let h = push(push(EMPTY_HISTORY, a), b);
    expect(h.done).toEqual([a, b]);
    expect(canRedo(h)).toBe(false);
    h = undo(h);
    expect(h.done).toEqual([a]);
    expect(canRedo(h)).toBe(true);
    h = redo(h);
    expect(h.done).toEqual([a, b]);
    h = undo(undo(h));
    expect(canUndo(h)).toBe(false);
    expect(undo(h)).toBe(h); // nothing left to undo
    h = redo(h);
    const c: PaintOp = { kind: 'invert' };
    h = push(h, c);
    expect(h.done).toEqual([a, c]);
    expect(canRedo(h)).toBe(false);
    expect(redo(h)).toBe(h);
  });

  it('undoes a clear and an invert like strokes', () => {
    const line = stroke([{ x: 0, y: 0.5 }, { x: 4, y: 0.5 }], 1);
    let h = push(push(EMPTY_HISTORY, line), { kind: 'clear' });
    expect(paintedPixels(rasterize(h.done, 4, 2))).toBe(0);
    h = undo(h);
    expect(paintedPixels(rasterize(h.done, 4, 2))).toBe(4);
    h = push(h, { kind: 'invert' });
    expect(paintedPixels(rasterize(h.done, 4, 2))).toBe(4);
    expect(picture([...h.done], 4, 2)).toEqual(['....', '####']);
    h = undo(h);
    expect(picture([...h.done], 4, 2)).toEqual(['####', '....']);
  });
});

/** A 2D context that records what is drawn. */
function fakeContext() {
  const calls: string[] = [];
  const ctx: Ctx2D = {
    globalCompositeOperation: 'source-over',
    fillStyle: '#000',
    strokeStyle: '#000',
    lineWidth: 1,
    lineCap: 'butt',
    lineJoin: 'miter',
    setTransform: (a, _b, _c, d) => calls.push(`transform ${a} ${d}`),
    beginPath: () => calls.push('begin'),
    moveTo: (x, y) => calls.push(`move ${x} ${y}`),
    lineTo: (x, y) => calls.push(`line ${x} ${y}`),
    arc: (x, y, r) => calls.push(`arc ${x} ${y} ${r} ${String(ctx.fillStyle)}`),
    stroke: () => calls.push(`stroke ${ctx.globalCompositeOperation} ${String(ctx.strokeStyle)} ${ctx.lineWidth} ${ctx.lineCap}`),
    fill: () => calls.push(`fill ${ctx.globalCompositeOperation}`),
    fillRect: (x, y, w, h) => calls.push(`fillRect ${ctx.globalCompositeOperation} ${String(ctx.fillStyle)} ${x} ${y} ${w} ${h}`),
    clearRect: (x, y, w, h) => calls.push(`clearRect ${x} ${y} ${w} ${h}`),
  };
  return { ctx, calls };
}

describe('replay onto a canvas', () => {
  const ops: PaintOp[] = [
    stroke([{ x: 10, y: 20 }, { x: 30, y: 20 }], 8),
    stroke([{ x: 15, y: 20 }, { x: 25, y: 20 }], 4, true),
    stroke([{ x: 50, y: 50 }], 6),
    { kind: 'invert' },
  ];

  it('draws a mask layer in image coordinates, scaled to the canvas, erasing to transparent', () => {
    const { ctx, calls } = fakeContext();
    replay(ctx, ops, { width: 200, height: 100, scale: 0.5, background: null, invertColor: '#e0245e' });
    expect(calls).toEqual([
      'transform 0.5 0.5',
      'clearRect 0 0 200 100',
      'transform 0.5 0.5',
      'begin',
      'move 10 20',
      'line 30 20',
      'stroke source-over #e0245e 8 round',
      'transform 0.5 0.5',
      'begin',
      'move 15 20',
      'line 25 20',
      'stroke destination-out #e0245e 4 round',
      'transform 0.5 0.5',
      'begin',
      'arc 50 50 3 #e0245e',
      'fill source-over',
      'transform 0.5 0.5',
      'fillRect xor #e0245e 0 0 200 100',
    ]);
    expect(ctx.globalCompositeOperation).toBe('source-over');
  });

  it('draws a sketch on white paper, erasing with the paper colour', () => {
    const { ctx, calls } = fakeContext();
    replay(ctx, ops.slice(0, 2), { width: 512, height: 512, scale: 1, background: '#ffffff' });
    expect(calls[1]).toBe('fillRect source-over #ffffff 0 0 512 512');
    expect(calls).toContain('stroke source-over #e0245e 8 round');
    expect(calls).toContain('stroke source-over #ffffff 4 round');
  });
});

/** A canvas that keeps the pixels put into it and "encodes" them as a PNG-typed blob. */
function fakeCanvas() {
  const made: { width: number; height: number; pixels: Uint8ClampedArray | null } = { width: 0, height: 0, pixels: null };
  const canvas: CanvasLike = {
    width: 300,
    height: 150,
    getContext: () =>
      ({
        createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
        putImageData: (img: ImageData) => {
          made.width = canvas.width;
          made.height = canvas.height;
          made.pixels = img.data;
        },
      }) as unknown as CanvasRenderingContext2D,
    toBlob: (cb, type) => cb(new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], { type: type ?? '' })),
  };
  return { canvas, made };
}

describe('maskPng', () => {
  it('is the natural size of the image even when the canvas is shown smaller, white where painted', async () => {
    // A 640x480 image shown at 320x240 on screen, at (100, 50): a stroke across its top left quarter.
    const rect = { left: 100, top: 50, width: 320, height: 240 };
    const a = toImagePoint(110, 60, rect, 640, 480);
    const b = toImagePoint(150, 60, rect, 640, 480);
    expect(a).toEqual({ x: 20, y: 20 });
    expect(b).toEqual({ x: 100, y: 20 });
    const { canvas, made } = fakeCanvas();
    const blob = await maskPng([stroke([a, b], 10)], 640, 480, () => canvas);
    expect(blob.type).toBe('image/png');
    expect([made.width, made.height]).toEqual([640, 480]);
    const px = made.pixels as Uint8ClampedArray;
    expect(px.length).toBe(640 * 480 * 4);
    const at = (x: number, y: number) => Array.from(px.slice((y * 640 + x) * 4, (y * 640 + x) * 4 + 4));
    expect(at(60, 20)).toEqual([255, 255, 255, 255]); // on the stroke
    expect(at(60, 24)).toEqual([255, 255, 255, 255]); // within half the brush
    expect(at(60, 26)).toEqual([0, 0, 0, 255]); // beyond it: black, opaque
    expect(at(320, 240)).toEqual([0, 0, 0, 255]);
    let white = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i] === 255) white++;
    expect(white).toBe(paintedPixels(rasterize([stroke([a, b], 10)], 640, 480)));
  });

  it('fails with a message when the browser cannot encode it', async () => {
    const { canvas } = fakeCanvas();
    canvas.toBlob = (cb) => cb(null);
    await expect(maskPng([], 4, 4, () => canvas)).rejects.toThrow(/could not encode/);
  });
});
