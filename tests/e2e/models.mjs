// Browser tests of the prompt box's model picker, LoRA picker and SDXL size conditioning, and
// of the image dialog's model hash and LoRAs, against a stubbed server: the built client
// (web-client/dist) is served by a small static server here, and every /api request and the
// live WebSocket are answered by Playwright routes with SDXL, SD 1.x, a broken checkpoint and
// LoRAs. No `atelier` binary is needed (the server's own suites, run.mjs and collab.mjs, start
// the real one; it has only the cppn model, without LoRAs).
//
//   cd tests/e2e && node --test --test-reporter=spec models.mjs
import assert from 'node:assert/strict';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath, problemsText, recordProblems, screenshot, TEST_TIMEOUT_MS } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const webRoot = path.resolve(here, '..', '..', process.env.ATELIER_WEB_ROOT || 'web-client/dist');

// ---- What the stubbed server knows.

const TS = '2026-12-01T10:00:00Z';
const USER = { id: 1, username: 'alice', is_admin: true, disabled: false, created_at: TS };
const PROJECT = { id: 1, name: 'Harbour moodboard', description: '', created_by: 1, created_at: TS, updated_at: TS, role: 'owner' };
const MODEL_HASH = '0123456789abcdef'.repeat(4);
const LORA_HASH = 'fedcba9876543210'.repeat(4);
// 1x1 PNG, for image and thumbnail URLs.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

const params = (w, h, steps, guidance, samplers) => ({
  width: { min: 64, max: 2048, default: w, multiple_of: 8 },
  height: { min: 64, max: 2048, default: h, multiple_of: 8 },
  steps: { min: 1, max: 150, default: steps },
  count: { min: 1, max: 4, default: 1 },
  guidance: { min: 0, max: 30, default: guidance },
  strength: { min: 0, max: 1, default: 0.6 },
  seed: { min: -1, max: 2 ** 53 - 1, default: -1 },
  samplers,
  default_sampler: samplers[0],
  modes: ['txt2img', 'variation', 'remix', 'upscale'],
  upscale_factors: [2],
});
const sdModel = (id, family, w, extra = {}) => ({
  id,
  kind: 'sd',
  description: `Stable Diffusion (${family})`,
  params: params(w, w, family === 'sdxl' ? 30 : 25, family === 'sdxl' ? 5 : 7.5, ['euler_a', 'dpmpp_2m']),
  family,
  hash: MODEL_HASH,
  available: true,
  unavailable_reason: null,
  native_width: w,
  native_height: w,
  size_conditioning: family === 'sdxl',
  max_loras: 2,
  loras: [],
  ...extra,
});
const CATALOG = {
  models: [
    {
      id: 'cppn', kind: 'builtin', description: 'Abstract patterns', params: params(512, 512, 24, 7, ['smooth', 'contour']),
      family: null, hash: null, available: true, unavailable_reason: null, native_width: 512, native_height: 512,
      size_conditioning: false, max_loras: 0, loras: [],
    },
    sdModel('sdxl-base', 'sdxl', 1024, { loras: ['ink-style', 'film-grain', 'neon'] }),
    sdModel('dreamshaper.safetensors', 'sd1', 512, { loras: ['watercolor'] }),
    sdModel('half-download.safetensors', null, 512, {
      hash: null, available: false, unavailable_reason: 'truncated file: 1.2 of 2.1 GB', max_loras: 0, size_conditioning: false,
    }),
  ],
  loras: [
    { name: 'ink-style', family: 'sdxl', hash: LORA_HASH, available: true, reason: null },
    { name: 'film-grain', family: 'sdxl', hash: LORA_HASH, available: true, reason: null },
    { name: 'neon', family: 'sdxl', hash: LORA_HASH, available: true, reason: null },
    { name: 'cut-short', family: 'sdxl', hash: null, available: false, reason: 'not a safetensors file' },
    { name: 'watercolor', family: 'sd1', hash: LORA_HASH, available: true, reason: null },
  ],
};

const image = (id, job) => ({
  id, project_id: 1, job_id: job, index: 0, created_by: 1, width: 1024, height: 1024, seed: 42, parent_image_id: null,
  sha256: 'ab'.repeat(32), bytes: PNG.length, url: `/api/v1/images/${id}/file`, thumb_url: `/api/v1/images/${id}/thumb`,
  created_at: 1764583200000,
});
const SDXL_LORAS = [{ name: 'ink-style', weight: 0.8, hash: LORA_HASH }];
const WARNING = 'LoRA ink-style: 3 of 40 keys matched no layer';
const job = (id, state, args, more = {}) => ({
  id, project_id: 1, state, model: args.model, prompt: args.prompt, negative_prompt: args.negative_prompt ?? '',
  width: args.width ?? 1024, height: args.height ?? 1024, steps: args.steps ?? 30, guidance: args.guidance ?? 5,
  seed: 42, count: 1, sampler: args.sampler ?? 'euler_a', mode: args.mode ?? 'txt2img', strength: 0.6,
  parent_image_id: null, priority: 0, progress: { step: state === 'done' ? 30 : 0, steps: 30 }, attempt: 1,
  max_attempts: 3, position: state === 'queued' ? 1 : null, cancel_requested: false, images: [], error: null,
  submitted_by: 1, created_at: 1764583200000, queued_at: 1764583200000, started_at: null, finished_at: null,
  updated_at: 1764583200000, loras: (args.loras ?? []).map((l) => ({ ...l, hash: LORA_HASH })), model_hash: MODEL_HASH,
  original_size: null, target_size: null, crop_top_left: null, warnings: [], ...more,
});
const DONE_JOB = job(5, 'done', { model: 'sdxl-base', prompt: 'lighthouse in ink', loras: [] }, {
  loras: SDXL_LORAS, images: [image(7, 5)], warnings: [WARNING],
  original_size: [1024, 1024], target_size: [1024, 1024], crop_top_left: [0, 0],
});
const IMAGE_DETAIL = {
  ...image(7, 5), model: 'sdxl-base', prompt: 'lighthouse in ink', negative_prompt: '', steps: 30, guidance: 5,
  sampler: 'euler_a', mode: 'txt2img', strength: 0.6,
  parameters: 'lighthouse in ink\nSteps: 30, Sampler: euler_a, CFG scale: 5, Seed: 42, Size: 1024x1024, Model hash: 0123456789, Model: sdxl-base',
  loras: SDXL_LORAS, model_hash: MODEL_HASH, original_size: [2048, 2048], target_size: [1024, 1024], crop_top_left: [0, 0],
  parent: null, children: [], reactions: {}, my_reactions: [],
};

/** Stubs REST and the live socket on `context`; returns the job.submit args it was sent. */
async function stubServer(context) {
  const submitted = [];
  const json = (route, body, status = 200) =>
    route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
  await context.route(/\/(readyz|healthz)$/, (route) => json(route, { status: 'ready', checks: {} }));
  await context.route(/\/api\/v1\//, (route) => {
    const url = new URL(route.request().url());
    const p = url.pathname.replace('/api/v1', '');
    if (p === '/info') return json(route, { name: 'atelier', version: '0.9.0', api: 'v1', instance_id: '0'.repeat(32) });
    if (p === '/me') return json(route, { user: USER, credential: { kind: 'session', scope: 'admin' } });
    if (p === '/projects') return json(route, { projects: [PROJECT] });
    if (p === '/projects/1') return json(route, PROJECT);
    if (p === '/projects/1/members') return json(route, { members: [{ user_id: 1, username: 'alice', role: 'owner', added_at: TS }] });
    if (p === '/models') return json(route, CATALOG);
    if (p === '/images/7') return json(route, IMAGE_DETAIL);
    if (/^\/images\/\d+\/(file|thumb)$/.test(p)) return route.fulfill({ status: 200, contentType: 'image/png', body: PNG });
    return json(route, { error: { code: 'not_found', message: `stub has no ${p}` } }, 404);
  });
  let seq = 1;
  let nextJob = 6;
  await context.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
    const send = (m) => ws.send(JSON.stringify(m));
    ws.onMessage((text) => {
      const m = JSON.parse(String(text));
      if (m.type === 'hello') send({ type: 'welcome', proto: 1, user: USER, session: 's1' });
      if (m.type === 'subscribe') {
        send({ type: 'subscribed', project: 1, role: 'owner', head_seq: seq });
        if (m.after_seq < 1) send({ type: 'event', project: 1, event: { seq: 1, type: 'job.done', ts: TS, actor: 1, data: { job: DONE_JOB } } });
        send({ type: 'presence', project: 1, members: [{ user: 1, username: 'alice', state: {}, sessions: 1 }] });
      }
      if (m.type === 'cmd' && m.op === 'job.submit') {
        submitted.push(m.args);
        // The server's answer to a weight it refuses, to see where the field error lands.
        if (m.args.loras?.some((l) => l.weight === 3.5)) {
          return send({
            type: 'ack', id: m.id, ok: false,
            error: { code: 'invalid_argument', message: "field 'loras[0].weight': stubbed refusal", field: 'loras[0].weight' },
          });
        }
        const j = job(nextJob++, 'queued', m.args);
        seq += 1;
        send({ type: 'ack', id: m.id, ok: true, result: j });
        send({ type: 'event', project: 1, event: { seq, type: 'job.queued', ts: TS, actor: 1, data: { job: j } } });
      }
    });
  });
  return submitted;
}

// ---- A static server for the built client, with the SPA fallback.

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon' };
function startStatic() {
  const srv = createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = path.join(webRoot, path.normalize(urlPath));
    if (!file.startsWith(webRoot) || !existsSync(file) || statSync(file).isDirectory()) file = path.join(webRoot, 'index.html');
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

const st = { http: null, browser: null, base: '' };

async function room(viewport) {
  const context = await st.browser.newContext({ viewport });
  const submitted = await stubServer(context);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems = [];
  recordProblems(page, problems);
  await page.goto(`${st.base}/p/1`);
  await page.getByRole('heading', { name: 'Harbour moodboard' }).waitFor();
  await page.getByLabel('Prompt', { exact: true }).waitFor();
  return { context, page, submitted, problems };
}

async function withRoom(name, viewport, fn) {
  const r = await room(viewport);
  try {
    await fn(r);
  } catch (err) {
    await screenshot(r.page, `${name}-failure`).catch(() => {});
    throw new Error(`${err.message}${problemsText(r.problems)}`, { cause: err });
  } finally {
    await r.context.close().catch(() => {});
  }
}

async function noOverflow(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${what} is ${overflow}px wider than the screen`);
}

describe('model picker, LoRAs and size conditioning (stubbed server)', { timeout: 3 * 60_000 }, () => {
  before(async () => {
    if (!existsSync(path.join(webRoot, 'index.html'))) throw new Error(`no web client build in ${webRoot} (npm run build in web-client/)`);
    st.http = await startStatic();
    st.base = `http://127.0.0.1:${st.http.address().port}`;
    st.browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  }, { timeout: 60_000 });
  after(async () => {
    await st.browser?.close().catch(() => {});
    await new Promise((resolve) => (st.http ? st.http.close(resolve) : resolve()));
  });

  test('the picker shows family and native size; choosing a model applies its defaults and offers its LoRAs', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withRoom('models', { width: 1280, height: 900 }, async ({ page, submitted, problems }) => {
      await page.getByText('Settings', { exact: true }).click();
      const picker = page.getByLabel('Model', { exact: true });
      const options = await picker.locator('option').evaluateAll((os) => os.map((o) => ({ text: o.textContent, disabled: o.disabled, title: o.title })));
      assert.deepEqual(options, [
        { text: 'cppn — 512×512', disabled: false, title: '' },
        { text: 'sdxl-base — SDXL, 1024×1024', disabled: false, title: '' },
        { text: 'dreamshaper.safetensors — SD 1.x, 512×512', disabled: false, title: '' },
        { text: 'half-download.safetensors — 512×512 (unavailable)', disabled: true, title: 'truncated file: 1.2 of 2.1 GB' },
      ]);
      await page.getByRole('list', { name: 'Unavailable models' }).getByText('truncated file: 1.2 of 2.1 GB').waitFor();
      // cppn takes no LoRAs and no size conditioning.
      assert.equal(await page.getByRole('group', { name: /LoRAs/ }).count(), 0, 'no LoRA picker for cppn');
      assert.equal(await page.getByText('Advanced: size conditioning').count(), 0);

      await picker.selectOption('sdxl-base');
      assert.equal(await page.getByLabel('Width', { exact: true }).inputValue(), '1024');
      assert.equal(await page.getByLabel('Steps', { exact: true }).inputValue(), '30');
      assert.equal(await page.getByLabel('Guidance', { exact: true }).inputValue(), '5');
      assert.equal(await page.getByLabel('Sampler', { exact: true }).inputValue(), 'euler_a');
      await page.locator('#p-model-facts', { hasText: 'SDXL · native 1024×1024 · up to 2 LoRAs · hash 0123456789' }).waitFor();

      const loras = page.getByRole('group', { name: /LoRAs/ });
      const add = loras.getByRole('button', { name: 'Add LoRA' });
      await add.click();
      const first = loras.getByLabel('LoRA 1', { exact: true });
      assert.equal(await first.evaluate((el) => el === document.activeElement), true, 'focus moves to the new LoRA');
      assert.equal(await first.inputValue(), 'ink-style');
      const choices = await first.locator('option').evaluateAll((os) => os.map((o) => `${o.value}${o.disabled ? ' (disabled)' : ''}`));
      assert.deepEqual(choices, ['ink-style', 'film-grain', 'neon', 'cut-short (disabled)']);
      assert.equal(await loras.getByLabel('Weight').first().inputValue(), '1');
      await loras.getByLabel('Weight').first().fill('0.75');
      await page.keyboard.press('Tab'); // keyboard: the weight's next stop is its Remove button
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Remove LoRA 1 (ink-style)');
      await add.click();
      assert.equal(await loras.getByLabel('LoRA 2', { exact: true }).inputValue(), 'film-grain');
      assert.equal(await add.isDisabled(), true, 'at most max_loras (2)');
      await loras.getByRole('button', { name: 'Remove LoRA 2 (film-grain)' }).click();
      assert.equal(await loras.getByLabel('LoRA 2', { exact: true }).count(), 0);

      // Size conditioning: collapsed, a half-filled pair is refused next to its fields.
      await page.getByText('Advanced: size conditioning').click();
      await page.getByLabel('Original width').fill('2048');
      await page.getByLabel('Prompt', { exact: true }).fill('harbour at dusk');
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.locator('#p-original_size-error', { hasText: 'give both width and height' }).waitFor();
      assert.equal(await page.getByLabel('Original width').getAttribute('aria-invalid'), 'true');
      assert.equal(submitted.length, 0, 'nothing sent while a field is wrong');
      await page.getByLabel('Original height').fill('2048');
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.locator('li.job', { hasText: 'harbour at dusk' }).waitFor();
      assert.equal(submitted.length, 1);
      assert.deepEqual(submitted[0].loras, [{ name: 'ink-style', weight: 0.75 }]);
      assert.deepEqual(submitted[0].original_size, [2048, 2048]);
      assert.equal('target_size' in submitted[0], false, 'empty pairs are left to the server');
      assert.equal(submitted[0].width, 1024);
      await screenshot(page, 'models-sdxl-1280');

      // A field the server refuses is shown next to that field.
      await loras.getByLabel('Weight').first().fill('3.5');
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.locator('#p-lora-0-weight-error', { hasText: 'stubbed refusal' }).waitFor();

      // Another model: its defaults; LoRAs that do not fit it are dropped, no size conditioning.
      await picker.selectOption('dreamshaper.safetensors');
      assert.equal(await page.getByLabel('Width', { exact: true }).inputValue(), '512');
      assert.equal(await page.getByLabel('LoRA 1', { exact: true }).count(), 0);
      assert.equal(await page.getByText('Advanced: size conditioning').count(), 0);
      await loras.getByRole('button', { name: 'Add LoRA' }).click();
      assert.equal(await page.getByLabel('LoRA 1', { exact: true }).inputValue(), 'watercolor');
      assert.deepEqual(problems, [], 'console errors, failed requests or HTTP errors');
    });
  });

  test('the feed shows LoRAs and warnings; the image dialog shows the model hash and the LoRAs used', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withRoom('image-dialog', { width: 1280, height: 900 }, async ({ page, submitted, problems }) => {
      const card = page.locator('li.job', { hasText: 'lighthouse in ink' });
      await card.getByRole('list', { name: 'Warnings' }).getByText(WARNING).waitFor();
      await card.getByText('LoRA ink-style 0.8').waitFor();
      await card.locator('[data-image="7"]').click();
      const dialog = page.getByRole('dialog');
      const facts = dialog.getByRole('definition');
      await dialog.getByText('Model hash').waitFor();
      assert.ok((await facts.allTextContents()).includes('0123456789'), 'short model hash (10 hex)');
      await dialog.getByRole('list', { name: 'LoRAs used' }).getByText('ink-style weight 0.8').waitFor();
      await dialog.getByText('original 2048×2048; target 1024×1024; crop top 0, left 0').waitFor();
      await screenshot(page, 'models-image-dialog-1280');
      // A variation keeps the parent's LoRAs.
      await dialog.getByRole('button', { name: 'Variation' }).click();
      await dialog.getByText('Variation queued').waitFor();
      assert.deepEqual(submitted[0].loras, [{ name: 'ink-style', weight: 0.8 }]);
      assert.equal(submitted[0].mode, 'variation');
      // Reuse brings the LoRAs (and the size conditioning that differs from the defaults) back.
      await dialog.getByRole('button', { name: 'Reuse prompt', exact: true }).click();
      await page.getByText('Settings', { exact: true }).click();
      assert.equal(await page.getByLabel('Model', { exact: true }).inputValue(), 'sdxl-base');
      assert.equal(await page.getByLabel('LoRA 1', { exact: true }).inputValue(), 'ink-style');
      assert.equal(await page.getByLabel('Weight').first().inputValue(), '0.8');
      await page.getByText('Advanced: size conditioning').click();
      assert.equal(await page.getByLabel('Original width').inputValue(), '2048');
      assert.equal(await page.getByLabel('Target width').inputValue(), '');
      assert.deepEqual(problems, [], 'console errors, failed requests or HTTP errors');
    });
  });

  test('fits a 390px phone screen', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withRoom('models-phone', { width: 390, height: 844 }, async ({ page, problems }) => {
      await page.getByText('Settings', { exact: true }).click();
      await page.getByLabel('Model', { exact: true }).selectOption('sdxl-base');
      const add = page.getByRole('button', { name: 'Add LoRA' });
      await add.click();
      await add.click();
      await page.getByText('Advanced: size conditioning').click();
      await page.getByLabel('Crop top').fill('5');
      await page.getByRole('button', { name: 'Generate' }).click(); // no prompt, half a crop
      await page.locator('#p-crop_top_left-error').waitFor();
      await noOverflow(page, 'the room with LoRAs and size conditioning');
      await screenshot(page, 'models-phone');
      await page.locator('[data-image="7"]').click();
      await page.getByRole('dialog').getByText('Model hash').waitFor();
      await noOverflow(page, 'the image dialog');
      await screenshot(page, 'models-image-dialog-phone');
      assert.deepEqual(problems, [], 'console errors, failed requests or HTTP errors');
    });
  });
});
