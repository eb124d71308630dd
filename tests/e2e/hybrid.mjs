// Browser end-to-end tests, hybrid work: people bring their own images into a room and have the
// model work on them, against a real `atelier serve` (fresh data dir, the `null` test model with
// a step delay so that progress is visible). Alice uploads a photo by drag and drop; Bob sees it
// arrive, paints a mask over it and runs an inpaint; both watch it run and get the same result
// with its lineage; Bob sketches on a phone-sized page and remixes the sketch; Carol (viewer)
// sees everything and can upload nothing. Screenshots go to test-results/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { recordProblems, screenshot, server, setUp, state, tearDown } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const WAIT = { timeout: 30_000 };
const STEPS = 8;
const SERVER_ARGS = ['--enable-null-model', 'true', '--null-step-ms', '150'];
const PHOTO = { name: 'harbour.jpg', width: 320, height: 240 };

async function person(viewport = { width: 1280, height: 800 }) {
  const context = await state.browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const problems = [];
  recordProblems(page, problems);
  return { context, page, problems };
}

async function signUp(page, username) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
}

/** Records every status line any job card shows, so short-lived states can be asserted. */
async function watchStatuses(page) {
  await page.evaluate(() => {
    window.__statuses = [];
    const seen = () => {
      for (const el of document.querySelectorAll('[data-testid=job-status]')) {
        const id = el.closest('[data-job]')?.getAttribute('data-job');
        const text = `${id}: ${el.textContent}`;
        if (!window.__statuses.includes(text)) window.__statuses.push(text);
      }
    };
    new MutationObserver(seen).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

/** A DataTransfer (in the page) holding one image file drawn there: a small "photo". */
function photoTransfer(page, { name, width, height, type = 'image/jpeg' }) {
  return page.evaluateHandle(
    async ({ name, width, height, type }) => {
      const c = document.createElement('canvas');
      c.width = width;
      c.height = height;
      const g = c.getContext('2d');
      const sky = g.createLinearGradient(0, 0, 0, height);
      sky.addColorStop(0, '#2f6fd1');
      sky.addColorStop(1, '#f2c94c');
      g.fillStyle = sky;
      g.fillRect(0, 0, width, height);
      g.fillStyle = '#7a5230';
      g.fillRect(width * 0.15, height * 0.65, width * 0.7, height * 0.2); // a hull
      g.fillStyle = '#ffffff';
      g.beginPath();
      g.arc(width * 0.8, height * 0.25, height * 0.12, 0, Math.PI * 2); // the sun
      g.fill();
      const blob = await new Promise((resolve) => c.toBlob(resolve, type, 0.9));
      const dt = new DataTransfer();
      dt.items.add(new File([blob], name, { type }));
      return dt;
    },
    { name, width, height, type },
  );
}

/** Drags `transfer` over the room and drops it, as a browser does. */
async function dropOnRoom(page, transfer) {
  const zone = page.getByTestId('upload-drop');
  await zone.dispatchEvent('dragenter', { dataTransfer: transfer });
  await zone.dispatchEvent('dragover', { dataTransfer: transfer });
  await zone.dispatchEvent('drop', { dataTransfer: transfer });
}

/** Presses the mouse at `from` and moves through `to` in small steps (fractions of `box`). */
async function paint(page, box, from, ...to) {
  const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
  await page.mouse.move(...at(from));
  await page.mouse.down();
  for (const p of to) await page.mouse.move(...at(p), { steps: 8 });
  await page.mouse.up();
}

/**
 * The RGBA of pixels of an image of the project, decoded by the browser: `points` are image
 * coordinates.
 */
function pixelsOf(page, imageId, points) {
  return page.evaluate(
    async ({ imageId, points }) => {
      const res = await fetch(`/api/v1/images/${imageId}/file`);
      const bitmap = await createImageBitmap(await res.blob());
      const c = document.createElement('canvas');
      c.width = bitmap.width;
      c.height = bitmap.height;
      const g = c.getContext('2d');
      g.drawImage(bitmap, 0, 0);
      return {
        type: res.headers.get('content-type'),
        width: bitmap.width,
        height: bitmap.height,
        pixels: points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data)),
      };
    },
    { imageId, points },
  );
}

const getJson = (page, path) => page.evaluate(async (p) => (await fetch(p)).json(), path);

const card = (page, prompt) => page.locator('li.job', { has: page.locator('.job-prompt', { hasText: prompt }) });

async function expectDone(page, prompt) {
  const c = card(page, prompt);
  await c.locator('[data-testid=job-status]', { hasText: 'Done' }).waitFor(WAIT);
  return Number(await c.locator('[data-image]').first().getAttribute('data-image'));
}

/** The page, and any open dialog, are no wider than the screen (nothing scrolls sideways). */
async function expectFits(page, what) {
  const overflow = await page.evaluate(() =>
    Math.max(
      document.documentElement.scrollWidth - window.innerWidth,
      ...[...document.querySelectorAll('[role=dialog]')].map((d) => d.scrollWidth - d.clientWidth),
    ),
  );
  assert.ok(overflow <= 0, `${what} is ${overflow}px wider than the screen`);
}

describe('hybrid work in a room: uploads, inpaint, sketches', { timeout: 5 * 60_000 }, () => {
  before(() => setUp({ serverArgs: SERVER_ARGS }), { timeout: 90_000 });
  after(tearDown, { timeout: 30_000 });

  test('Alice drops a photo, Bob inpaints it and remixes a sketch, Carol watches and cannot upload', { timeout: 4 * 60_000 }, async () => {
    const a = await person();
    const b = await person();
    let c = null;
    try {
      // Alice creates the room; Bob joins as an editor, Carol as a viewer.
      await a.page.goto(`${server.baseUrl}/`);
      await signUp(a.page, 'alice');
      await a.page.getByLabel('Project name', { exact: true }).fill('Harbour edits');
      await a.page.getByRole('button', { name: 'Create project' }).click();
      await a.page.waitForURL(/\/p\/\d+$/);
      const roomUrl = a.page.url();
      await a.page.getByRole('heading', { name: 'Harbour edits' }).waitFor();
      await a.page.getByRole('button', { name: 'Create invite link' }).click();
      const bobInvite = await a.page.getByLabel('Invite link', { exact: true }).inputValue();
      await b.page.goto(bobInvite);
      await signUp(b.page, 'bob');
      await b.page.waitForURL(roomUrl, WAIT);
      await b.page.getByTestId('connection').filter({ hasText: 'Connected' }).waitFor(WAIT);
      await a.page.getByLabel('Role', { exact: true }).selectOption('viewer');
      await a.page.getByRole('button', { name: 'Create invite link' }).click();
      await a.page.waitForFunction((first) => document.querySelector('#invite-link')?.value !== first, bobInvite);
      const carolInvite = await a.page.getByLabel('Invite link', { exact: true }).inputValue();
      assert.notEqual(carolInvite, bobInvite, 'a second invite link, for the viewer');
      c = await person();
      await c.page.goto(carolInvite);
      await signUp(c.page, 'carol');
      await c.page.waitForURL(roomUrl, WAIT);
      await c.page.getByText('You are a viewer in this project').waitFor(WAIT);

      // Alice drops a photo onto the room; everyone sees it arrive.
      const photo = await photoTransfer(a.page, PHOTO);
      await dropOnRoom(a.page, photo);
      const aUpload = a.page.getByTestId('feed-upload');
      await aUpload.waitFor(WAIT);
      const uploadId = Number(await aUpload.getAttribute('data-image-id'));
      assert.ok(uploadId > 0, 'the upload has an image id');
      for (const p of [b.page, c.page]) {
        const u = p.locator(`[data-testid=feed-upload][data-image-id="${uploadId}"]`);
        await u.getByText('Uploaded by alice').waitFor(WAIT);
        await u.getByText(PHOTO.name).waitFor(WAIT);
      }
      const stored = await getJson(b.page, `/api/v1/images/${uploadId}`);
      assert.equal(stored.source, 'upload');
      assert.equal(stored.job_id, null);
      assert.deepEqual([stored.width, stored.height], [PHOTO.width, PHOTO.height]);
      const storedFile = await pixelsOf(b.page, uploadId, []);
      assert.equal(storedFile.type, 'image/png', 'an upload is stored as a PNG');

      // Bob works with the null model, 8 steps (the edit takes the prompt box's settings).
      await b.page.getByText('Settings').click();
      await b.page.getByLabel('Model', { exact: true }).selectOption('null');
      await b.page.getByLabel('Steps', { exact: true }).fill(String(STEPS));

      // He opens the upload and paints a mask across the hull.
      await b.page.locator(`[data-testid=feed-upload][data-image-id="${uploadId}"] [data-image]`).click();
      const dialog = b.page.getByRole('dialog');
      await dialog.getByText('Uploaded by alice').waitFor();
      await dialog.getByText(`File: ${PHOTO.name}`).waitFor();
      await dialog.getByTestId('edit-open').click();
      const maskCanvas = dialog.getByTestId('mask-canvas');
      await maskCanvas.waitFor();
      // Nothing painted yet: Run is refused next to the mask, before anything is sent.
      await dialog.getByTestId('edit-prompt').fill('a red sailboat');
      await dialog.getByTestId('edit-run').click();
      await dialog.getByText('Paint over the part of the image to regenerate first.').waitFor();
      const box = await maskCanvas.boundingBox();
      await paint(b.page, box, [0.25, 0.75], [0.5, 0.72], [0.75, 0.75]);
      await dialog.getByRole('button', { name: 'Undo' }).click(); // undo, redo: the stroke is back
      await dialog.getByRole('button', { name: 'Redo' }).click();
      await screenshot(b.page, 'hybrid-mask-bob');
      await watchStatuses(a.page);
      await watchStatuses(b.page);
      await dialog.getByTestId('edit-run').click();
      await dialog.getByText('Inpaint queued').waitFor(WAIT);
      await dialog.getByRole('button', { name: 'Close' }).click();

      // Both see it run and finish, with the same image and the lineage to Alice's upload.
      const lineage = `Inpaint of upload #${uploadId} by alice`;
      const results = [];
      for (const p of [a.page, b.page]) {
        const job = card(p, 'a red sailboat');
        await job.getByTestId('lineage').filter({ hasText: lineage }).waitFor(WAIT);
        results.push(await expectDone(p, 'a red sailboat'));
      }
      assert.equal(results[0], results[1], 'Alice and Bob see the same result');
      const child = results[0];
      for (const [who, p] of [['alice', a.page], ['bob', b.page]]) {
        const statuses = await p.evaluate(() => window.__statuses);
        assert.ok(statuses.some((s) => new RegExp(`Running · step \\d+ of ${STEPS}`).test(s)), `${who} saw the inpaint run: ${statuses}`);
      }
      assert.equal((await card(c.page, 'a red sailboat').getByTestId('lineage').textContent()).trim(), lineage);

      // The job: an inpaint of the upload with Bob's mask, the mask the image's natural size,
      // white under the stroke and black elsewhere; the result the parent's size.
      const result = await getJson(b.page, `/api/v1/images/${child}`);
      assert.equal(result.mode, 'inpaint');
      assert.equal(result.parent_image_id, uploadId);
      assert.deepEqual([result.width, result.height], [PHOTO.width, PHOTO.height]);
      const job = await getJson(b.page, `/api/v1/jobs/${result.job_id}`);
      assert.equal(job.mode, 'inpaint');
      assert.equal(job.inpaint_area, 'whole');
      assert.equal(job.mask_blur, 4);
      const mask = await pixelsOf(b.page, job.mask_image_id, [[160, 174], [20, 20], [300, 230]]);
      assert.deepEqual([mask.width, mask.height], [PHOTO.width, PHOTO.height], 'the mask is the photo’s size');
      assert.deepEqual(mask.pixels[0].slice(0, 3), [255, 255, 255], 'white under the stroke');
      assert.deepEqual(mask.pixels[1].slice(0, 3), [0, 0, 0], 'black away from it');
      assert.deepEqual(mask.pixels[2].slice(0, 3), [0, 0, 0], 'black away from it');

      // The upload's dialog lists the inpaint among what was made from it; the child's names it.
      await a.page.locator(`[data-testid=feed-upload][data-image-id="${uploadId}"] [data-image]`).click();
      const aDialog = a.page.getByRole('dialog');
      await aDialog.getByRole('list', { name: 'Made from this image' }).getByText(`image #${child}`).waitFor(WAIT);
      await aDialog.getByRole('button', { name: `image #${child}` }).click();
      await aDialog.getByText('Made by bob').waitFor();
      await aDialog.getByRole('region', { name: 'Lineage' }).getByRole('button', { name: `upload #${uploadId}` }).waitFor();
      const facts = aDialog.getByRole('definition');
      await facts.getByRole('button', { name: `image #${job.mask_image_id}` }).waitFor(); // its mask
      await facts.getByText('whole image').waitFor();
      await screenshot(a.page, 'hybrid-lineage-alice');
      await a.page.keyboard.press('Escape');
      await aDialog.waitFor({ state: 'detached' });

      // Carol sees all of it, has no upload, sketch or edit controls, and her drops and pastes
      // upload nothing.
      assert.equal(await c.page.getByTestId('sketch-open').count(), 0, 'no Sketch for a viewer');
      assert.equal(await c.page.getByTestId('upload-input').count(), 0, 'no file picker for a viewer');
      await c.page.locator(`[data-testid=feed-upload][data-image-id="${uploadId}"] [data-image]`).click();
      const cDialog = c.page.getByRole('dialog');
      await cDialog.getByText('Uploaded by alice').waitFor();
      assert.equal(await cDialog.getByTestId('edit-open').count(), 0, 'no Edit for a viewer');
      await c.page.keyboard.press('Escape');
      await cDialog.waitFor({ state: 'detached' });
      const uploadsBefore = await c.page.getByTestId('feed-upload').count();
      const sent = [];
      c.page.on('request', (r) => r.url().includes('/uploads') && sent.push(`${r.method()} ${r.url()}`));
      const carols = await photoTransfer(c.page, { name: 'carol.png', width: 64, height: 64, type: 'image/png' });
      const zone = c.page.getByTestId('upload-drop');
      await zone.dispatchEvent('dragenter', { dataTransfer: carols });
      assert.equal(await c.page.locator('.drop-overlay').count(), 0, 'no drop overlay for a viewer');
      await zone.dispatchEvent('dragover', { dataTransfer: carols });
      await zone.dispatchEvent('drop', { dataTransfer: carols });
      await c.page.evaluate((dt) => document.body.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true })), carols);
      // Whatever the drop and the paste started has gone out by the time a request made after
      // them has come back.
      await c.page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
      await getJson(c.page, '/api/v1/me');
      assert.deepEqual(sent, [], 'a viewer’s drop and paste send nothing');
      assert.equal(await c.page.getByTestId('feed-upload').count(), uploadsBefore, 'no upload appeared');
      await screenshot(c.page, 'hybrid-viewer');

      // Bob sketches on a phone-sized page and uses it as a starting point: a remix draft.
      await b.page.setViewportSize({ width: 390, height: 844 });
      await b.page.getByTestId('sketch-open').click();
      const pad = b.page.getByRole('dialog', { name: 'Sketch' });
      const sheet = pad.getByTestId('sketch-canvas');
      const sheetBox = await sheet.boundingBox();
      assert.ok(sheetBox.width < 390 && sheetBox.width > 200, `the sheet fits the phone: ${sheetBox.width}px`);
      await expectFits(b.page, 'the sketch pad on a phone');
      await pad.getByRole('button', { name: 'Red', exact: true }).click();
      await paint(b.page, sheetBox, [0.1, 0.5], [0.5, 0.5], [0.9, 0.5]);
      await pad.getByRole('button', { name: 'Blue', exact: true }).click();
      await paint(b.page, sheetBox, [0.5, 0.1], [0.5, 0.9]);
      await b.page.keyboard.press('Control+z'); // the blue line goes
      await screenshot(b.page, 'hybrid-sketch-phone');
      await pad.getByRole('button', { name: 'Use as starting point' }).click();
      await pad.waitFor({ state: 'detached', ...WAIT });
      await b.page.locator('.remix-chip').waitFor(WAIT);
      const sketchId = Number(/#(\d+)/.exec(await b.page.locator('.remix-chip').textContent())[1]);
      await a.page.locator(`[data-testid=feed-upload][data-image-id="${sketchId}"]`).getByText('Uploaded by bob').waitFor(WAIT);
      // The drawing as it was drawn on the scaled-down sheet: red across the middle, no blue.
      const drawn = await pixelsOf(b.page, sketchId, [[256, 256], [256, 60], [20, 20]]);
      assert.deepEqual([drawn.width, drawn.height], [512, 512]);
      const [mid, top, corner] = drawn.pixels;
      assert.ok(mid[0] > 180 && mid[1] < 120 && mid[2] < 120, `red where the red line ran: ${mid}`);
      assert.deepEqual(top.slice(0, 3), [255, 255, 255], 'the undone blue line is not in the upload');
      assert.deepEqual(corner.slice(0, 3), [255, 255, 255], 'white paper elsewhere');

      await b.page.getByLabel('Prompt', { exact: true }).fill('a harbour from my sketch');
      await b.page.getByRole('button', { name: 'Generate' }).click();
      const remix = card(a.page, 'a harbour from my sketch');
      await remix.getByTestId('lineage').filter({ hasText: `Remix of upload #${sketchId} by bob` }).waitFor(WAIT);
      await expectDone(a.page, 'a harbour from my sketch');
      await expectDone(b.page, 'a harbour from my sketch');
      await expectFits(b.page, 'the room on a phone');

      // The Edit mode fits the phone too.
      await b.page.locator(`[data-testid=feed-upload][data-image-id="${uploadId}"] [data-image]`).click();
      await b.page.getByRole('dialog').getByTestId('edit-open').click();
      await b.page.getByRole('dialog').getByTestId('edit-outpaint').click();
      await b.page.getByRole('dialog').getByTestId('extend-right').fill('128');
      await expectFits(b.page, 'the Edit mode on a phone');
      await screenshot(b.page, 'hybrid-outpaint-phone');
      await b.page.keyboard.press('Escape'); // back to the image
      await b.page.getByRole('dialog').getByTestId('edit-open').waitFor();
      await b.page.keyboard.press('Escape');

      await a.page.setViewportSize({ width: 390, height: 844 });
      await expectFits(a.page, 'the room on a phone');
      assert.deepEqual(a.problems, [], 'alice page problems');
      assert.deepEqual(b.problems, [], 'bob page problems');
      assert.deepEqual(c.problems, [], 'carol page problems');
    } catch (err) {
      await screenshot(a.page, 'hybrid-failure-alice').catch(() => {});
      await screenshot(b.page, 'hybrid-failure-bob').catch(() => {});
      if (c) await screenshot(c.page, 'hybrid-failure-carol').catch(() => {});
      throw err;
    } finally {
      await a.context.close();
      await b.context.close();
      if (c) await c.context.close();
    }
  });
});
