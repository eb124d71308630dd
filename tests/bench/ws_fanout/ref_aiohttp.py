#!/usr/bin/python3
"""Reference server for tests/bench/ws_fanout: the benchmark's load on Python aiohttp, the stack
ComfyUI serves its WebSocket on. Written for the benchmark only, not part of Atelier.

It plays the part of a generation server with one worker: POST /start?jobs=K runs K jobs one
after another, each STEPS steps at a fixed rate of one per STEP_MS, and broadcasts to every connected client what
Atelier's room sends: three durable events per job (queued, started, done) numbered with a
gap-free seq, a progress message per step stamped with its send time (at_us), and a binary
preview frame at most every PREVIEW_MS. Broadcasting awaits each client in turn, as ComfyUI's
PromptServer.send_json does. GET /stats answers {"seq": events sent,
"running": whether jobs are still running}.
"""
import argparse
import asyncio
import json
import time

from aiohttp import web


def now_us():
    return time.time_ns() // 1000


class Hub:
    def __init__(self, args):
        self.args = args
        self.clients = set()
        self.seq = 0
        self.running = False
        self.padding = "x" * max(0, args.event_bytes - 120)
        self.preview = b"ATPV" + bytes(max(0, args.preview_bytes - 4))

    async def send_all(self, data):
        for ws in list(self.clients):
            try:
                if isinstance(data, bytes):
                    await ws.send_bytes(data)
                else:
                    await ws.send_str(data)
            except Exception:  # a client that went away
                self.clients.discard(ws)

    async def event(self, job, kind):
        self.seq += 1
        msg = {"type": "event", "project": 1,
               "event": {"seq": self.seq, "type": kind, "actor": 1,
                         "data": {"id": job, "pad": self.padding}}}
        await self.send_all(json.dumps(msg, separators=(",", ":")))

    async def run_jobs(self, count):
        # Steps at a fixed rate, as a sampler on its own thread produces them (ComfyUI's does):
        # a slow broadcast makes messages late, it does not slow the job down.
        a = self.args
        self.running = True
        loop = asyncio.get_running_loop()
        start = loop.time()
        ticks = 0
        last_preview = 0.0
        for job in range(1, count + 1):
            await self.event(job, "job.queued")
            await self.event(job, "job.started")
            for step in range(1, a.steps + 1):
                ticks += 1
                await asyncio.sleep(max(0.0, start + ticks * a.step_ms / 1000 - loop.time()))
                await self.send_all(json.dumps({"type": "progress", "project": 1, "job": job,
                                                "step": step, "steps": a.steps,
                                                "at_us": now_us()}, separators=(",", ":")))
                if time.monotonic() - last_preview >= a.preview_ms / 1000:
                    last_preview = time.monotonic()
                    await self.send_all(self.preview)
            await self.event(job, "job.done")
        self.running = False


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--step-ms", type=int, default=50)
    p.add_argument("--preview-ms", type=int, default=250)
    p.add_argument("--event-bytes", type=int, default=900)
    p.add_argument("--preview-bytes", type=int, default=700)
    args = p.parse_args()
    hub = Hub(args)

    async def ws_handler(request):
        ws = web.WebSocketResponse(max_msg_size=64 * 1024, heartbeat=15)
        await ws.prepare(request)
        hub.clients.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            hub.clients.discard(ws)
        return ws

    async def start(request):
        asyncio.get_running_loop().create_task(hub.run_jobs(int(request.query.get("jobs", "1"))))
        return web.json_response({"started": True}, status=202)

    async def stats(request):
        return web.json_response({"seq": hub.seq, "clients": len(hub.clients),
                                  "running": hub.running})

    app = web.Application()
    app.add_routes([web.get("/ws", ws_handler), web.post("/start", start),
                    web.get("/stats", stats)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
