// Binary preview frames of the live protocol (proto/websocket.md, "Previews"): a 40-byte
// little-endian header naming project, job and step, then the encoded image.

export const PREVIEW_HEADER_BYTES = 40;

export type PreviewFormat = 'jpeg' | 'webp';

export interface PreviewFrame {
  project: number;
  job: number;
  step: number;
  steps: number;
  width: number;
  height: number;
  format: PreviewFormat;
  /** The encoded image: a view into the frame, not a copy. */
  image: Uint8Array;
}

/** Parses a frame; throws an Error for anything that is not a version-1 preview frame. */
export function parsePreviewFrame(frame: ArrayBuffer): PreviewFrame {
  if (frame.byteLength < PREVIEW_HEADER_BYTES) throw new Error('preview frame too short');
  const view = new DataView(frame);
  const magic = String.fromCharCode(
    view.getUint8(0),
    view.getUint8(1),
    view.getUint8(2),
    view.getUint8(3),
  );
  if (magic !== 'ATPV') throw new Error('not a preview frame');
  if (view.getUint8(4) !== 1) throw new Error(`unknown preview layout ${view.getUint8(4)}`);
  const formatByte = view.getUint8(5);
  if (formatByte !== 1 && formatByte !== 2) throw new Error(`unknown image format ${formatByte}`);
  return {
    // Ids are int64 on the wire; JavaScript numbers hold them exactly up to 2^53.
    project: Number(view.getBigUint64(8, true)),
    job: Number(view.getBigUint64(16, true)),
    step: view.getUint32(24, true),
    steps: view.getUint32(28, true),
    width: view.getUint16(32, true),
    height: view.getUint16(34, true),
    format: formatByte === 1 ? 'jpeg' : 'webp',
    image: new Uint8Array(frame, PREVIEW_HEADER_BYTES),
  };
}
