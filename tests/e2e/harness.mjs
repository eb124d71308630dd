// Shared by the browser end-to-end suites: starts the real `atelier` binary (fresh data dir,
// free port, the built web client), launches Debian's Chromium through playwright-core, and
// makes sure neither outlives the run. See README.md for the environment variables.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const serverBin = path.resolve(repoRoot, process.env.ATELIER_BIN || 'build/release/server/app/atelier');
const webRoot = path.resolve(repoRoot, process.env.ATELIER_WEB_ROOT || 'web-client/dist');
export const externalUrl = process.env.ATELIER_E2E_URL || '';
export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const resultsDir = path.join(here, 'test-results');

export const STARTUP_TIMEOUT_MS = 20_000;
export const TERM_GRACE_MS = 5_000;
export const TEST_TIMEOUT_MS = 60_000;
// Ends the whole run if something hangs past every other limit.
const WATCHDOG_MS = 9 * 60_000;

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Docker's default /dev/shm is 64 MiB, too small for Chromium.
  '--disable-dev-shm-usage',
];

/** The running server: child process, its output so far, base URL. */
export const server = { proc: null, output: '', baseUrl: '', dataDir: '' };
export const state = { browser: null };

const MAX_OUTPUT = 64 * 1024;
function appendOutput(chunk) {
  server.output += chunk.toString('utf8');
  if (server.output.length > MAX_OUTPUT) server.output = server.output.slice(-MAX_OUTPUT);
}

export function serverLog() {
  const text = server.output.trim();
  return text ? `\n--- server output ---\n${text}\n--- end of server output ---` : '\n(the server printed nothing)';
}

export function isRunning(proc) {
  return proc !== null && proc.exitCode === null && proc.signalCode === null;
}

/**
 * Starts the binary with a fresh data dir and resolves with its base URL once it listens;
 * `extraArgs` are added to `atelier serve`'s (e.g. to enable the null model).
 */
export async function startServer(extraArgs = []) {
  if (!existsSync(serverBin)) {
    throw new Error(`server binary not found: ${serverBin} (build it with ` +
      '`cmake --preset release && cmake --build --preset release --target atelier`, or set ATELIER_BIN)');
  }
  if (!existsSync(path.join(webRoot, 'index.html'))) {
    throw new Error(`no web client build in ${webRoot} (run \`npm run build\` in web-client/, or set ATELIER_WEB_ROOT)`);
  }
  server.output = ''; // a second suite in the same process starts a new server
  server.dataDir = await mkdtemp(path.join(tmpdir(), 'atelier-e2e-'));
  const args = ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', server.dataDir, '--web-root', webRoot, ...extraArgs];
  // The server also reads ATELIER_* variables (and a --config file named by one); keep the
  // developer's out of the test, except how it logs.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('ATELIER_') || k === 'ATELIER_LOG_LEVEL' || k === 'ATELIER_LOG_FORMAT',
    ),
  );
  // Own process group, so that SIGTERM/SIGKILL reach anything the server started as well.
  const proc = spawn(serverBin, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  server.proc = proc;

  return await new Promise((resolve, reject) => {
    // Text or JSON logs alike: `... listening on http://127.0.0.1:43521 ...`
    const listening = /listening on http:\/\/[^\s"]+?:(\d+)/;
    let settled = false;
    let timer;
    const finish = (err, url) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.stdout.off('data', onData);
      proc.stderr.off('data', onData);
      if (err) reject(err);
      else resolve(url);
    };
    const onData = () => {
      const m = listening.exec(server.output);
      if (m) finish(null, `http://127.0.0.1:${m[1]}`);
    };
    proc.stdout.on('data', appendOutput);
    proc.stderr.on('data', appendOutput);
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('error', (err) => finish(new Error(`cannot start ${serverBin}: ${err.message}`)));
    // 'close' (not 'exit'): by then all of its output has been read.
    proc.once('close', (code, signal) =>
      finish(new Error(`server exited before listening (code ${code}, signal ${signal})${serverLog()}`)));
    timer = setTimeout(
      () => finish(new Error(`no "listening on http://127.0.0.1:PORT" line within ${STARTUP_TIMEOUT_MS} ms${serverLog()}`)),
      STARTUP_TIMEOUT_MS,
    );
  });
}

/** Polls /readyz until it answers 200; fails with the server's output after `deadline`. */
export async function waitUntilReady(baseUrl, deadline) {
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (server.proc && !isRunning(server.proc)) {
      throw new Error(`server exited while starting (code ${server.proc.exitCode})${serverLog()}`);
    }
    try {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${body}`;
    } catch (err) {
      last = String(err?.cause?.message ?? err?.message ?? err);
    }
    await delay(100);
  }
  throw new Error(`/readyz did not answer 200 within ${STARTUP_TIMEOUT_MS} ms (last: ${last})${serverLog()}`);
}

/** Sends `signal` to the server's process group (falls back to the process alone). */
function signalServer(signal) {
  const proc = server.proc;
  if (!proc?.pid) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    try {
      proc.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Drops our ends of the server's pipes, so a leftover grandchild cannot keep this run alive. */
function releasePipes() {
  server.proc?.stdout?.destroy();
  server.proc?.stderr?.destroy();
}

/** SIGTERM, then SIGKILL after TERM_GRACE_MS. Resolves with how it ended. */
export async function stopServer() {
  const proc = server.proc;
  if (!proc) return null;
  if (!isRunning(proc)) {
    signalServer('SIGKILL'); // anything left in its group
    releasePipes();
    return { code: proc.exitCode, signal: proc.signalCode, killed: false };
  }
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  signalServer('SIGTERM');
  const first = await Promise.race([exited, delay(TERM_GRACE_MS, null, { ref: false })]);
  let result;
  if (first) {
    result = { ...first, killed: false };
  } else {
    signalServer('SIGKILL');
    result = { ...(await exited), killed: true };
  }
  signalServer('SIGKILL');
  releasePipes();
  return result;
}

// Last resorts: never leave a server behind, whatever ends this process.
process.once('exit', () => {
  if (server.proc) signalServer('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    if (server.proc) signalServer('SIGKILL');
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}
const watchdog = setTimeout(() => {
  console.error(`e2e: run exceeded ${WATCHDOG_MS / 1000} s; killing the server and giving up${serverLog()}`);
  if (server.proc) signalServer('SIGKILL');
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

/**
 * Collects into `problems` every console error, uncaught page error, failed request and 4xx/5xx
 * answer of `page`, except the one the app expects: 401 from GET /api/v1/me while signed out
 * (how it learns that nobody is signed in).
 */
export function recordProblems(page, problems) {
  const signedOutProbe = (url, status) => status === 401 && new URL(url).pathname === '/api/v1/me';
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location()?.url ?? '';
    if (url && /status of 401/.test(msg.text()) && signedOutProbe(url, 401)) return;
    problems.push(`console error: ${msg.text()}${url ? ` (${url})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  page.on('response', (res) => {
    if (res.status() >= 400 && !signedOutProbe(res.url(), res.status())) {
      problems.push(`HTTP ${res.status()} for ${res.url()}`);
    }
  });
}

/**
 * Opens `urlPath` in a fresh page (own context, given viewport) and records every console
 * error, uncaught page error, failed request and 4xx/5xx response on the way.
 */
export async function openPage(urlPath, viewport = { width: 1280, height: 800 }) {
  const context = await state.browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems = [];
  recordProblems(page, problems);
  const response = await page.goto(`${server.baseUrl}${urlPath}`, { waitUntil: 'load' });
  return { context, page, response, problems };
}

export async function screenshot(page, name) {
  await mkdir(resultsDir, { recursive: true });
  await page.screenshot({ path: path.join(resultsDir, `${name}.png`), fullPage: true });
}

/** Runs `fn` with an open page; on failure saves a screenshot; always closes the context. */
export async function withPage(name, urlPath, viewport, fn) {
  const opened = await openPage(urlPath, viewport);
  try {
    await fn(opened);
  } catch (err) {
    await screenshot(opened.page, `${name}-failure`).catch(() => {});
    throw err;
  } finally {
    await opened.context.close().catch(() => {});
  }
}

export function problemsText(problems) {
  return problems.length ? `\nwhat the page ran into:\n  ${problems.join('\n  ')}` : '';
}

export async function expectServerReady(page, problems) {
  const status = page.locator('[data-testid=server-status]');
  await status.waitFor({ state: 'visible' });
  await page.waitForFunction(
    () => document.querySelector('[data-testid=server-status]')?.textContent?.includes('Server ready'),
    null,
    { timeout: 15_000 },
  ).catch(async () => {
    const text = (await status.textContent())?.trim();
    assert.fail(`server status never became "Server ready"; it says "${text}"${problemsText(problems)}`);
  });
}

export async function expectVersion(page, problems) {
  const res = await fetch(`${server.baseUrl}/api/v1/info`);
  assert.equal(res.status, 200, 'GET /api/v1/info');
  const info = await res.json();
  assert.match(info.version, /^\d+\.\d+\.\d+/, 'info.version');
  const version = page.locator('[data-testid=server-version]');
  await page.waitForFunction(
    (v) => document.querySelector('[data-testid=server-version]')?.textContent?.trim() === v,
    info.version,
    { timeout: 15_000 },
  ).catch(async () => {
    const shown = (await version.textContent())?.trim();
    assert.fail(`page shows version "${shown}", server says "${info.version}"${problemsText(problems)}`);
  });
  return info.version;
}


/**
 * Starts the server (unless ATELIER_E2E_URL names one) and the browser; `serverArgs` are added
 * to `atelier serve`'s.
 */
export async function setUp({ serverArgs = [] } = {}) {
  if (externalUrl) {
    server.baseUrl = externalUrl.replace(/\/+$/, '');
  } else {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    server.baseUrl = await startServer(serverArgs);
    await waitUntilReady(server.baseUrl, deadline);
  }
  state.browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
}

/** Closes the browser, stops the server, removes its data dir. */
export async function tearDown() {
  if (state.browser) await Promise.race([state.browser.close().catch(() => {}), delay(10_000, null, { ref: false })]);
  await stopServer();
  if (server.dataDir) await rm(server.dataDir, { recursive: true, force: true });
}
