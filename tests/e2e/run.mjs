// Browser end-to-end tests, first part: the app loads (signed out), deep links work, the page fits
// a phone, the server stops cleanly. collab.mjs has the two-user room tests. The harness
// (harness.mjs) starts the real `atelier` binary and Debian's Chromium.
//
//   cd tests/e2e && npm ci && npm test
//
// Environment:
//   ATELIER_BIN       server binary (default build/release/server/app/atelier, from the repo root)
//   ATELIER_WEB_ROOT  built client (default web-client/dist; build it with `npm run build` there)
//   ATELIER_E2E_URL   test an already running server at this URL instead of starting one
//   CHROMIUM_PATH     browser (default /usr/bin/chromium)
//
// Screenshots go to tests/e2e/test-results/. The run always ends by itself: the server gets
// SIGTERM (SIGKILL after 5 s), the browser is closed, and a watchdog ends a stuck run.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  TERM_GRACE_MS,
  TEST_TIMEOUT_MS,
  expectServerReady,
  expectVersion,
  externalUrl,
  screenshot,
  serverLog,
  setUp,
  stopServer,
  tearDown,
  withPage,
} from './harness.mjs';

describe('atelier in a browser', { timeout: 4 * 60_000 }, () => {
  before(setUp, { timeout: 90_000 });
  after(tearDown, { timeout: 30_000 });

  test('the home page shows the product, "Server ready" and the version', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withPage('home', '/', { width: 1280, height: 800 }, async ({ page, response, problems }) => {
      assert.equal(response?.status(), 200, 'GET /');
      assert.equal(await page.title(), 'Atelier');
      await page.getByRole('heading', { level: 1, name: 'Atelier' }).waitFor();
      await expectServerReady(page, problems);
      await expectVersion(page, problems);
      await screenshot(page, 'home-1280');
      assert.deepEqual(problems, [], 'console errors, failed requests or HTTP errors');
    });
  });

  test('a deep link such as /p/123 loads the app (SPA fallback)', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withPage('deep-link', '/p/123', { width: 1280, height: 800 }, async ({ page, response, problems }) => {
      assert.equal(response?.status(), 200, 'GET /p/123');
      assert.equal(await page.title(), 'Atelier');
      await expectServerReady(page, problems);
      await expectVersion(page, problems);
      await screenshot(page, 'deep-link');
      assert.deepEqual(problems, [], 'console errors, failed requests or HTTP errors');
    });
  });

  test('the page fits a phone screen', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withPage('phone', '/', { width: 390, height: 844 }, async ({ page, problems }) => {
      await expectServerReady(page, problems);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than a 390px screen`);
      await screenshot(page, 'home-phone');
      assert.deepEqual(problems, [], 'console errors, failed requests or HTTP errors');
    });
  });

  test('the server stops cleanly on SIGTERM', { timeout: TEST_TIMEOUT_MS, skip: externalUrl ? 'ATELIER_E2E_URL set' : false }, async () => {
    const end = await stopServer();
    assert.ok(end, 'the server was started');
    assert.equal(end.killed, false, `server ignored SIGTERM for ${TERM_GRACE_MS} ms and was killed${serverLog()}`);
    assert.equal(end.code, 0, `server exit status after SIGTERM (signal ${end.signal})${serverLog()}`);
  });
});
