// The protocol types agree with proto/websocket.md: every message type in its tables exists
// here with the same fields, and the other way round; the same for cmd ops and close codes.
import { describe, expect, it } from 'vitest';
import doc from '../../../proto/websocket.md?raw';
import { CLIENT_FIELDS, CloseCode, CMD_OPS, EVENT_TYPES, imageOfEvent, parseServerMessage, SERVER_FIELDS } from './protocol';

/** The rows of the first table after `heading`, as arrays of cells. */
function table(heading: string): string[][] {
  const start = doc.indexOf(heading);
  if (start < 0) throw new Error(`no "${heading}" in websocket.md`);
  const lines = doc.slice(start).split('\n');
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines.slice(1)) {
    if (line.startsWith('|')) {
      inTable = true;
      rows.push(line.split('|').slice(1, -1).map((c: string) => c.trim()));
    } else if (inTable) {
      break;
    }
  }
  return rows.slice(2); // header and separator
}

/** Backticked names outside parentheses: "`project` (id), `after_seq` (integer)" -> both. */
function fieldNames(cell: string): string[] {
  let depth = 0;
  let flat = '';
  for (const ch of cell) {
    if (ch === '(') depth += 1;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0) flat += ch;
  }
  return [...flat.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string);
}

function messages(heading: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [type, fields] of table(heading)) {
    const name = /`([a-z_.]+)`/.exec(type ?? '')?.[1];
    if (name) out[name] = fieldNames(fields ?? '');
  }
  return out;
}

describe('protocol types against proto/websocket.md', () => {
  it('client messages: the same types with the same fields', () => {
    const documented = messages('### Client to server');
    expect(Object.keys(documented).sort()).toEqual(Object.keys(CLIENT_FIELDS).sort());
    for (const [type, fields] of Object.entries(documented)) {
      expect([...(CLIENT_FIELDS as Record<string, readonly string[]>)[type]!].sort(), type).toEqual(fields.sort());
    }
  });

  it('server messages: the same types with the same fields', () => {
    const documented = messages('### Server to client');
    expect(Object.keys(documented).sort()).toEqual(Object.keys(SERVER_FIELDS).sort());
    for (const [type, fields] of Object.entries(documented)) {
      expect([...(SERVER_FIELDS as Record<string, readonly string[]>)[type]!].sort(), type).toEqual(fields.sort());
    }
  });

  it('cmd operations', () => {
    const ops = table('`cmd` operations').map((r) => /`([a-z_.]+)`/.exec(r[0] ?? '')?.[1]);
    expect(ops.sort()).toEqual([...CMD_OPS].sort());
  });

  it('event types: the list after "Event types in this version"', () => {
    const start = doc.indexOf('Event types in this version:');
    expect(start, 'websocket.md lists the event types').toBeGreaterThanOrEqual(0);
    // The sentence runs to its full stop (dots inside backticks are part of the names);
    // backticked names inside a parenthesised remark are not event types.
    let sentence = '';
    let quoted = false;
    let depth = 0;
    for (const ch of doc.slice(start + 'Event types in this version:'.length)) {
      if (ch === '`') quoted = !quoted;
      else if (!quoted && ch === '.') break;
      else if (!quoted && ch === '(') depth += 1;
      else if (!quoted && ch === ')') depth = Math.max(0, depth - 1);
      if (depth === 0) sentence += ch;
    }
    const documented = [...sentence.matchAll(/`([a-z_.]+)`/g)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...EVENT_TYPES].sort());
    expect(EVENT_TYPES).toContain('image.uploaded');
  });

  it('close codes', () => {
    const codes = table('## Close codes').map((r) => Number(r[0]));
    expect(codes.sort()).toEqual(Object.values(CloseCode).sort());
  });
});

describe('parseServerMessage', () => {
  it('reads each documented type and skips what it does not know', () => {
    expect(parseServerMessage('{"type":"progress","project":1,"job":2,"step":3,"steps":4,"at_us":5}')).toMatchObject({
      type: 'progress',
      step: 3,
    });
    expect(parseServerMessage('{"type":"ack","id":"a","ok":true,"result":{}}')).toMatchObject({ id: 'a' });
    expect(parseServerMessage('{"type":"shiny_new_thing"}')).toBeNull();
    expect(parseServerMessage('not json')).toBeNull();
    expect(parseServerMessage('[1,2]')).toBeNull();
    expect(parseServerMessage('{"type":"event","project":1}')).toBeNull();
  });
});

describe('imageOfEvent', () => {
  const image = { id: 12, project_id: 1, job_id: null, source: 'upload', original_name: 'cat.png' };
  const event = (type: string, data: unknown) => ({ seq: 1, type, ts: '', actor: 7, data }) as never;

  it('reads the image of image.uploaded, and nothing else', () => {
    expect(imageOfEvent(event('image.uploaded', { image }))).toEqual(image);
    expect(imageOfEvent(event('image.uploaded', {}))).toBeNull();
    expect(imageOfEvent(event('image.uploaded', { image: { id: '12' } }))).toBeNull();
    expect(imageOfEvent(event('job.done', { image }))).toBeNull();
  });
});
