import { describe, expect, it } from 'vitest';
import fixtureHex from '../../../proto/fixtures/preview-header-v1.hex?raw';
import { parsePreviewFrame, PREVIEW_HEADER_BYTES } from './preview';

// The same header the server's C++ test checks its encoder against (proto/fixtures/), so the
// two sides agree on the layout byte for byte.
function fixtureFrame(image: number[]): ArrayBuffer {
  const hex = fixtureHex.trim();
  const bytes = new Uint8Array(hex.length / 2 + image.length);
  for (let i = 0; i < hex.length / 2; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  bytes.set(image, hex.length / 2);
  return bytes.buffer;
}

describe('parsePreviewFrame', () => {
  it('reads the documented header and leaves the image bytes as they are', () => {
    const frame = parsePreviewFrame(fixtureFrame([0xff, 0xd8, 0xff]));
    expect(frame.project).toBe(Number(0x0102030405060708n)); // ids are read as Numbers
    expect(frame.job).toBe(Number(0x1112131415161718n));
    expect(frame.step).toBe(3);
    expect(frame.steps).toBe(20);
    expect(frame.width).toBe(256);
    expect(frame.height).toBe(128);
    expect(frame.format).toBe('jpeg');
    expect(Array.from(frame.image)).toEqual([0xff, 0xd8, 0xff]);
  });

  it('refuses short frames, other magic and other layout versions', () => {
    expect(() => parsePreviewFrame(new ArrayBuffer(PREVIEW_HEADER_BYTES - 1))).toThrow();
    const wrongMagic = new Uint8Array(fixtureFrame([]));
    wrongMagic[0] = 0x58;
    expect(() => parsePreviewFrame(wrongMagic.buffer)).toThrow('not a preview frame');
    const wrongVersion = new Uint8Array(fixtureFrame([]));
    wrongVersion[4] = 2;
    expect(() => parsePreviewFrame(wrongVersion.buffer)).toThrow('unknown preview layout');
  });
});
