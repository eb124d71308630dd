// Reference server for tests/bench/ws_fanout: the benchmark's load on Node with the `ws` package.
// Written for the benchmark only, not part of Atelier. Same behaviour as ref_aiohttp.py: one
// worker running POST /start?jobs=K jobs of STEPS steps at a fixed rate of one per STEP_MS; per job three durable events
// with a gap-free seq, a progress message per step stamped with at_us, a binary preview at most
// every PREVIEW_MS, broadcast to every client; GET /stats answers {"seq": events sent}.
// `ws` comes from web-client/node_modules (a dev dependency there): pass --ws-module <dir>.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
    return acc;
  }, []),
);
const opt = (name, def) => (args[name] === undefined ? def : Number(args[name]));
const steps = opt('steps', 20);
const stepMs = opt('step-ms', 50);
const previewMs = opt('preview-ms', 250);
const eventBytes = opt('event-bytes', 900);
const previewBytes = opt('preview-bytes', 700);
const require = createRequire(path.join(path.resolve(args['ws-module'] ?? '.'), 'x.js'));
const WebSocket = require('ws');
// ws 7 names it Server; 8 also exports WebSocketServer.
const WebSocketServer = WebSocket.WebSocketServer ?? WebSocket.Server;

const nowUs = () => Number(process.hrtime.bigint() / 1000n) + clockOffsetUs;
// hrtime is monotonic; anchor it to the wall clock once so at_us compares with other processes.
const clockOffsetUs = Date.now() * 1000 - Number(process.hrtime.bigint() / 1000n);

let seq = 0;
const padding = 'x'.repeat(Math.max(0, eventBytes - 120));
const preview = Buffer.alloc(Math.max(4, previewBytes));
preview.write('ATPV');

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/start') {
    runJobs(Number(url.searchParams.get('jobs') ?? 1));
    res.writeHead(202, { 'content-type': 'application/json' }).end('{"started":true}');
  } else if (url.pathname === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ seq, clients: wss.clients.size, running }));
  } else {
    res.writeHead(404).end();
  }
});
const wss = new WebSocketServer({ server, path: '/ws', maxPayload: 64 * 1024 });
wss.on('connection', (ws) => ws.on('error', () => {}));

function sendAll(data) {
  for (const ws of wss.clients) {
    if (ws.readyState === 1) ws.send(data);
  }
}
function event(job, type) {
  seq += 1;
  sendAll(JSON.stringify({ type: 'event', project: 1,
    event: { seq, type, actor: 1, data: { id: job, pad: padding } } }));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Steps at a fixed rate, as a sampler on its own thread would produce them: a slow broadcast
// makes messages late, it does not slow the job down.
let running = false;
async function runJobs(count) {
  running = true;
  const start = performance.now();
  let ticks = 0;
  let lastPreview = 0;
  for (let job = 1; job <= count; job++) {
    event(job, 'job.queued');
    event(job, 'job.started');
    for (let step = 1; step <= steps; step++) {
      ticks += 1;
      await sleep(Math.max(0, start + ticks * stepMs - performance.now()));
      sendAll(JSON.stringify({ type: 'progress', project: 1, job, step, steps, at_us: nowUs() }));
      if (performance.now() - lastPreview >= previewMs) {
        lastPreview = performance.now();
        sendAll(preview);
      }
    }
    event(job, 'job.done');
  }
  running = false;
}
server.listen(Number(args.port ?? 0), '127.0.0.1', 4096, () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
