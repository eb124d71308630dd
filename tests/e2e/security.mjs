// Browser end-to-end tests, third part: the app works under the server's security headers.
// The Content-Security-Policy allows no inline or evaluated script; this suite signs up, creates
// a project, opens its room (live WebSocket) and generates an image (previews are blob: URLs,
// results are images from the server) while recording every `securitypolicyviolation` and
// console error, and fails on any. It also checks that the policy is really enforced: an inline
// script injected into the page must be refused.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { problemsText, recordProblems, screenshot, server, setUp, state, tearDown } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const WAIT = { timeout: 30_000 };

/**
 * Records CSP violations into `violations` from before any of the app's code runs. The init
 * script is injected by the browser's debugging protocol, which the page's CSP does not govern.
 */
async function watchViolations(page, violations) {
  await page.exposeFunction('__reportCspViolation', (v) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
}

describe('security headers in a browser', { timeout: 4 * 60_000 }, () => {
  before(setUp, { timeout: 90_000 });
  after(tearDown, { timeout: 30_000 });

  test('the app signs up, opens a project and generates with no CSP violation', { timeout: 3 * 60_000 }, async () => {
    const context = await state.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const problems = [];
    const violations = [];
    recordProblems(page, problems);
    await watchViolations(page, violations);
    const report = () => `${violations.length ? `\nCSP violations:\n  ${violations.join('\n  ')}` : ''}${problemsText(problems)}`;
    try {
      const response = await page.goto(`${server.baseUrl}/`, { waitUntil: 'load' });
      assert.equal(response?.status(), 200, 'GET /');
      const headers = response.headers();
      const csp = headers['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'self'(;|$)/, `CSP: ${csp}`);
      assert.match(csp, /frame-ancestors 'none'/, `CSP: ${csp}`);
      assert.doesNotMatch(csp, /unsafe-(inline|eval)/, `CSP: ${csp}`);
      assert.equal(headers['x-frame-options'], 'DENY');
      assert.equal(headers['x-content-type-options'], 'nosniff');
      assert.equal(headers['referrer-policy'], 'same-origin');

      // Sign up (the first account: the admin) and create a project.
      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign up' }).click();
      await page.getByText('you are its admin').waitFor();
      await page.getByLabel('Project name', { exact: true }).fill('Under policy');
      await page.getByRole('button', { name: 'Create project' }).click();
      await page.waitForURL(/\/p\/\d+$/);
      const roomUrl = page.url();

      // The room: its heading, the live connection, and a generated image with its preview.
      await page.getByRole('heading', { name: 'Under policy' }).waitFor();
      await page.getByTestId('connection').filter({ hasText: 'Connected' }).waitFor(WAIT);
      await page.getByText('Settings').click();
      await page.getByLabel('Width', { exact: true }).fill('256');
      await page.getByLabel('Height', { exact: true }).fill('256');
      await page.getByLabel('Steps', { exact: true }).fill('8');
      await page.getByLabel('Prompt', { exact: true }).fill('a lantern at night');
      await page.getByRole('button', { name: 'Generate' }).click();
      const card = page.locator('li.job', { has: page.locator('.job-prompt', { hasText: 'a lantern at night' }) });
      await card.locator('[data-testid=job-status]', { hasText: 'Done' }).waitFor(WAIT);
      const image = card.getByRole('img', { name: 'a lantern at night' }).first();
      await image.waitFor(WAIT);
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await image.elementHandle(), WAIT);

      // Reload the room (a deep link through the SPA fallback, which carries the policy too).
      const reloaded = await page.goto(roomUrl, { waitUntil: 'load' });
      assert.match(reloaded?.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
      await page.getByRole('heading', { name: 'Under policy' }).waitFor();
      await page.getByTestId('connection').filter({ hasText: 'Connected' }).waitFor(WAIT);
      await screenshot(page, 'security-room');

      assert.deepEqual(violations, [], `the app ran into its own CSP${report()}`);
      assert.deepEqual(problems, [], `console errors, failed requests or HTTP errors${report()}`);

      // The policy is enforced, and this suite would see a violation: an injected inline script
      // does not run.
      const refused = await page.evaluate(() => new Promise((resolve) => {
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true });
        setTimeout(() => resolve('no violation reported within 10 s'), 10_000);
        const s = document.createElement('script');
        s.textContent = 'window.__inlineRan = true;';
        document.body.appendChild(s);
      }));
      assert.match(refused, /^script-src/, 'the injected inline script was refused and reported');
      assert.notEqual(await page.evaluate(() => window.__inlineRan), true, 'an inline script ran despite the CSP');
    } catch (err) {
      await screenshot(page, 'security-failure').catch(() => {});
      throw err;
    } finally {
      await context.close();
    }
  });
});
