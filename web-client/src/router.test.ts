import { describe, expect, it } from 'vitest';
import { parseRoute } from './router';

describe('parseRoute', () => {
  it('knows the app’s pages and nothing else', () => {
    expect(parseRoute('/')).toEqual({ page: 'home' });
    expect(parseRoute('/p/42')).toEqual({ page: 'room', project: 42 });
    expect(parseRoute('/p/42/')).toEqual({ page: 'room', project: 42 });
    expect(parseRoute('/invite/atl_i_abc-_')).toEqual({ page: 'invite', code: 'atl_i_abc-_' });
    expect(parseRoute('/p/abc')).toEqual({ page: 'not_found' });
    expect(parseRoute('/p/1234567890123456')).toEqual({ page: 'not_found' });
    expect(parseRoute('/elsewhere')).toEqual({ page: 'not_found' });
  });
});
