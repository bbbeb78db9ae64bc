"""``rtsep serve``: separation as a WebSocket service (one :class:`Separator` per connection).

Protocol
--------
One WebSocket connection carries one stream. All JSON messages are text
frames; all audio is binary frames of little-endian interleaved PCM.

1. Client → server, first message (text, JSON)::

       {"fs": 16000, "channels": 2, "engine": "td", "format": "float32", "block": 256,
        "params": {"memory_s": 3},       # optional, engine parameters
        "out_format": "float32",         # optional, "float32" or "int16"; default = format
        "stats_interval_s": 1.0,         # optional: a "stats" message every so often (default: none)
        "token": "secret"}               # required when the server has a token

   ``format`` is ``"float32"`` (full scale ±1) or ``"int16"``; ``block`` is
   the largest number of frames (samples per channel) one audio message will
   carry.
2. Server → client (text, JSON)::

       {"type": "ready", "latency_samples": 0, "engine": "td", "fs": 16000, "channels": 2,
        "format": "float32", "out_format": "float32", "block": 256, "max_frame_bytes": 1048576}

3. Client → server: binary frames of ``n × channels`` interleaved samples,
   ``1 ≤ n ≤ block``. For each one the server answers with one binary frame
   of ``n × 2`` interleaved samples ``voice, background`` in ``out_format``:
   exactly as many samples out as in, delayed by ``latency_samples`` like
   :meth:`Separator.process` (the client flushes with zeros to get the tail).
   The server reads the next frame only after answering the previous one
   (backpressure: a client that sends faster than the server separates
   fills its own TCP buffer, not the server's memory).

   With ``stats_interval_s`` the server also sends, after the answer to
   the first audio frame that many seconds after the previous one, a text
   message ``{"type": "stats", "final": false, ...}`` (the fields of the
   final stats below, plus ``rtf_recent``: over the interval only). Without
   it no text message ever comes between audio answers.

   Client → server ``{"type": "swap"}`` at any point after ``ready``: from
   the next audio frame on, the two returned channels trade places (what was
   returned as background is returned first, as the voice), for this stream
   only; the server answers ``{"type": "swapped", "swapped": true|false}``.
   A second swap undoes it.
4. Client → server ``{"type": "eof"}``; server → client
   ``{"type": "stats", "samples", "frames", "late_frames", "processing_s",
   "audio_s", "rtf", "nonfinite", "clipped", "voice", "swapped", "final": true, ...}``
   and a normal close (1000). ``voice`` is the separator's own label (which
   of its outputs is the talker), ``swapped`` whether the client swapped them.

Errors close only the offending session: first a JSON text message
``{"type": "error", "code": 1008, "message": "…one line…"}``, then a
WebSocket close with that code: 1008 policy (bad/missing config, bad token,
idle timeout, unknown message), 1009 too big (a frame larger than the
declared block, or than ``--max-frame-bytes``: the latter is cut by the
WebSocket library itself, without the JSON message), 1003 unsupported data
(a frame whose size is not a multiple of ``channels × sample size``, or
audio before the config), 1011 internal error, 1013 try again later (the
server is at ``--max-sessions``).

Plain HTTP on the same port: ``GET /health`` → ``ok``; ``GET /metrics`` →
Prometheus text (sessions active/total, samples processed, frames, late
frames, processing seconds, real-time factor); ``GET /`` → the browser
client (files in ``rtsep/web/``, see :mod:`rtsep.webpage`).

Origins: a WebSocket upgrade that carries an ``Origin`` header (every
browser sends one) is refused with HTTP 403 unless that origin is this
server's own (same host and port as the ``Host`` header) or was given with
``--allow-origin``; clients without ``Origin`` (``rtsep client``, scripts)
are not affected.

Concurrency
-----------
Each session's ``Separator.process`` runs in a bounded thread pool, off the
event loop, so a slow session never delays another session's network I/O.
The engines' main kernels are compiled with ``nogil=True``, so sessions
separate in parallel on all cores (measured on 2 cores with
``bench/bench_service.py``: 16 real-time 16 kHz td streams and 4-8 fd; the
label's speech detector and numpy's FFTs hold the GIL, and before the
detector td reached 96). Sessions are
independent, so past one machine run several servers behind any WebSocket-
capable load balancer (e.g. nginx ``proxy_pass`` with ``Upgrade`` headers,
or HAProxy in TCP mode) with connection-level balancing; no state is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ConfigError, DependencyError, RtsepError
from .webpage import SECURITY_HEADERS, normalize_origin, origin_allowed, page_file

#: one line per session opened and closed (INFO), its errors (WARNING: the client's, ERROR: ours)
LOG = logging.getLogger("rtsep.service")

#: Sample formats on the wire: name → little-endian dtype.
FORMATS: dict[str, np.dtype] = {"float32": np.dtype("<f4"), "int16": np.dtype("<i2")}

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_LATER = 1013


def websockets_part(module: str, command: str) -> ModuleType:
    """``websockets.<module>`` (the package is optional), for ``rtsep serve`` and ``rtsep client``.

    Raises
    ------
    DependencyError
        Naming ``command`` and the install line, if websockets is missing or too old.
    """
    try:
        return importlib.import_module(f"websockets.{module}")
    except ImportError as exc:
        raise DependencyError(f"{command} needs the websockets package (pip install 'websockets>=13'): {exc}") from None


@dataclass
class ServiceConfig:
    """Limits and address of a separation server.

    Attributes
    ----------
    host : str
        Address to listen on (default loopback only).
    port : int
        TCP port; 0 picks a free one (see :attr:`SeparationServer.port`).
    max_frame_bytes : int
        Largest WebSocket message accepted (bytes); bigger ones are closed
        with 1009 by the WebSocket library before they are buffered whole.
    max_sessions : int
        Concurrent streams; one more is refused with 1013.
    idle_timeout_s : float
        Seconds without a message (config or audio) before a session is closed (1008).
    token : str or None
        If set, the config message must carry it (``"token"``).
    workers : int
        Threads running ``Separator.process``.
    allow_origins : tuple of str
        Browser origins allowed besides the server's own (``--allow-origin``),
        as :func:`rtsep.webpage.normalize_origin` writes them.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    max_frame_bytes: int = 1 << 20
    max_sessions: int = 32
    idle_timeout_s: float = 30.0
    token: str | None = None
    workers: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    allow_origins: tuple[str, ...] = ()


class SessionError(Exception):
    """Ends one session with a JSON error and a WebSocket close code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code


class Metrics:
    """Process-wide counters shown at ``/metrics`` (updated from the event loop only)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.sessions_active = 0
        self.sessions_total = 0
        self.sessions_rejected = 0
        self.sessions_failed = 0
        self.samples = 0
        self.frames = 0
        self.late_frames = 0
        self.processing_s = 0.0
        self.audio_s = 0.0

    def prometheus(self) -> str:
        """The counters in the Prometheus text exposition format (version 0.0.4)."""
        rtf = self.processing_s / self.audio_s if self.audio_s else 0.0
        rows = [
            ("rtsep_sessions_active", "gauge", "Streams open now", self.sessions_active),
            ("rtsep_sessions_total", "counter", "Streams accepted since start", self.sessions_total),
            ("rtsep_sessions_rejected_total", "counter", "Connections refused (max sessions)", self.sessions_rejected),
            ("rtsep_sessions_failed_total", "counter", "Streams closed with an error", self.sessions_failed),
            ("rtsep_samples_processed_total", "counter", "Frames (samples per channel) separated", self.samples),
            ("rtsep_audio_frames_total", "counter", "Binary audio messages answered", self.frames),
            ("rtsep_late_frames_total", "counter",
             "Audio messages answered later than their own duration after arrival", self.late_frames),
            ("rtsep_processing_seconds_total", "counter", "Seconds spent separating", self.processing_s),
            ("rtsep_audio_seconds_total", "counter", "Seconds of audio separated", self.audio_s),
            ("rtsep_real_time_factor", "gauge", "processing seconds / audio seconds since start", rtf),
            ("rtsep_uptime_seconds", "gauge", "Seconds since the server started", time.time() - self.started),
        ]
        out = []
        for name, kind, help_, value in rows:
            out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {_num(value)}"]
        return "\n".join(out) + "\n"


def _num(v: float) -> str:
    return str(int(v)) if isinstance(v, int) else repr(float(v))


def parse_config(text: Any, cfg: ServiceConfig) -> dict[str, Any]:
    """Validate the first message of a stream.

    Parameters
    ----------
    text : str or bytes
        The message as received.
    cfg : ServiceConfig
        Server limits (token, frame size).

    Returns
    -------
    dict
        ``fs`` (Hz), ``channels``, ``engine``, ``format``, ``out_format``,
        ``block`` (frames), ``params``, ``stats_interval_s`` (0: no periodic stats).

    Raises
    ------
    SessionError
        1003 for a binary first message, 1008 for anything else wrong.
    """
    if not isinstance(text, str):
        raise SessionError(CLOSE_UNSUPPORTED, "the first message must be the JSON config (a text frame), got binary audio")
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise SessionError(CLOSE_POLICY, f"the config is not valid JSON ({exc})") from None
    if not isinstance(msg, dict):
        raise SessionError(CLOSE_POLICY, "the config must be a JSON object like "
                                         '{"fs": 16000, "channels": 2, "engine": "td", "format": "float32", "block": 256}')
    if cfg.token is not None and msg.get("token") != cfg.token:
        raise SessionError(CLOSE_POLICY, "missing or wrong token: pass the server's --token / RTSEP_TOKEN as \"token\"")
    known = {"fs", "channels", "engine", "format", "out_format", "block", "params", "token", "stats_interval_s"}
    extra = sorted(set(msg) - known)
    if extra:
        raise SessionError(CLOSE_POLICY, f"unknown config field(s) {', '.join(extra)}; known: {', '.join(sorted(known))}")

    def number(name: str, default: Any, integer: bool) -> Any:
        v = msg.get(name, default)
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if v is None or isinstance(v, bool) or not ok or not math.isfinite(v):
            kind = "an integer" if integer else "a number"
            raise SessionError(CLOSE_POLICY, f"config field {name!r} must be {kind}, got {v!r}")
        return v

    if "fs" not in msg:
        raise SessionError(CLOSE_POLICY, "config field 'fs' (sample rate, Hz) is required")
    fs = number("fs", None, integer=False)
    channels = number("channels", 2, integer=True)
    block = number("block", 256, integer=True)
    fmt = msg.get("format", "float32")
    out_fmt = msg.get("out_format", fmt)
    for name, v in (("format", fmt), ("out_format", out_fmt)):
        if v not in FORMATS:
            raise SessionError(CLOSE_POLICY, f"config field {name!r} must be \"float32\" or \"int16\", got {v!r}")
    engine = msg.get("engine", "td")
    if engine not in ("td", "fd"):
        raise SessionError(CLOSE_POLICY, f"config field 'engine' must be \"td\" or \"fd\", got {engine!r}")
    params = msg.get("params", {}) or {}
    if not isinstance(params, dict):
        raise SessionError(CLOSE_POLICY, f"config field 'params' must be an object of engine parameters, got {params!r}")
    if not 2 <= channels <= 8:
        raise SessionError(CLOSE_POLICY, f"config field 'channels' must be 2 to 8 microphones, got {channels}")
    frame_bytes = block * channels * FORMATS[fmt].itemsize
    if block < 1 or frame_bytes > cfg.max_frame_bytes:
        most = cfg.max_frame_bytes // (channels * FORMATS[fmt].itemsize)
        raise SessionError(CLOSE_POLICY, f"config field 'block' must be 1 to {most} frames for {channels} channels of "
                                         f"{fmt} (server max frame {cfg.max_frame_bytes} bytes), got {block}")
    interval = number("stats_interval_s", 0, integer=False)
    if interval < 0:
        raise SessionError(CLOSE_POLICY, f"config field 'stats_interval_s' must be ≥ 0 seconds (0: none), got {interval}")
    return {"fs": fs, "channels": channels, "engine": engine, "format": fmt, "out_format": out_fmt,
            "block": block, "params": params, "stats_interval_s": interval}


def _encode(voice: np.ndarray, background: np.ndarray, fmt: str) -> bytes:
    out = np.empty((voice.shape[0], 2), dtype=np.float32)
    out[:, 0] = voice
    out[:, 1] = background
    if fmt == "int16":
        # Round and clip: the float output can exceed full scale a little.
        return np.clip(np.rint(out * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return out.astype("<f4", copy=False).tobytes()


class SeparationServer:
    """The WebSocket server; use :meth:`start`/:meth:`stop` inside an event loop.

    Parameters
    ----------
    config : ServiceConfig
        Address and limits.
    """

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self.config = config or ServiceConfig()
        self.metrics = Metrics()
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.config.workers), thread_name_prefix="rtsep-sep")
        self._server: Any = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> "SeparationServer":
        """Bind and start accepting connections."""
        serve = websockets_part("asyncio.server", "rtsep serve").serve
        try:
            self._server = await serve(
                self._session, self.config.host, self.config.port,
                process_request=self._http,
                # The library refuses bigger messages itself (1009) before buffering them whole.
                max_size=self.config.max_frame_bytes,
                # Only one audio message is read ahead: backpressure reaches the client's socket.
                max_queue=4,
                compression=None,  # PCM does not deflate; compression only costs CPU
                ping_interval=20, ping_timeout=20)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}; "
                              "choose another --port") from None
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        await self._server.serve_forever()

    def _http(self, connection: Any, request: Any) -> Any:
        path = request.path.split("?", 1)[0]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            origin = request.headers.get("Origin")
            if not origin_allowed(origin, request.headers.get("Host"), self.config.allow_origins):
                return connection.respond(403, f"origin {origin} is not allowed; start rtsep serve with "
                                               f"--allow-origin {origin} to accept it\n")
            return None  # go on with the WebSocket handshake
        page = page_file(path)
        if page is not None:
            return _respond(connection, page[0], page[1], SECURITY_HEADERS)
        if path == "/health":
            return connection.respond(200, "ok\n")
        if path == "/metrics":
            return _respond(connection, self.metrics.prometheus(), "text/plain; version=0.0.4; charset=utf-8")
        return None  # go on with the WebSocket handshake

    async def _fail(self, ws: Any, code: int, message: str) -> None:
        try:
            await ws.send(json.dumps({"type": "error", "code": code, "message": message}))
        except Exception:  # noqa: BLE001 - the peer may already be gone
            pass
        # The close reason is limited to 123 bytes by RFC 6455.
        await ws.close(code, message.encode()[:120].decode(errors="ignore"))

    async def _session(self, ws: Any) -> None:
        m = self.metrics
        if m.sessions_active >= self.config.max_sessions:
            m.sessions_rejected += 1
            await self._fail(ws, CLOSE_TRY_LATER, f"server busy: {self.config.max_sessions} streams already open; retry later")
            return
        m.sessions_active += 1
        m.sessions_total += 1
        who = f"session {m.sessions_total} from {_peer(ws)}"
        LOG.info("%s: opened", who)
        try:
            s = await self._stream(ws)
            LOG.info("%s: closed after %.2f s of audio (%s, %d frames, %d late, real-time factor %.4f)",
                     who, s["audio_s"], s["engine"], s["frames"], s["late_frames"], s["rtf"])
        except SessionError as exc:
            m.sessions_failed += 1
            LOG.warning("%s: closed with code %d: %s", who, exc.code, exc)
            await self._fail(ws, exc.code, str(exc))
        except Exception as exc:  # noqa: BLE001 - one session's bug must not end the server
            from websockets.exceptions import ConnectionClosed

            if not isinstance(exc, ConnectionClosed):  # a vanished client is not our error
                m.sessions_failed += 1
                LOG.error("%s: internal error: %s: %s", who, type(exc).__name__, exc)
                await self._fail(ws, CLOSE_INTERNAL, f"internal error: {type(exc).__name__}: {exc}"[:300])
            elif exc.sent is not None and exc.sent.code == CLOSE_TOO_BIG:  # cut by the library's max_size
                m.sessions_failed += 1
                LOG.warning("%s: closed: a frame was larger than the server accepts", who)
            else:
                LOG.info("%s: the client went away without eof", who)
        finally:
            m.sessions_active -= 1

    async def _recv(self, ws: Any) -> Any:
        try:
            return await asyncio.wait_for(ws.recv(), self.config.idle_timeout_s)
        except asyncio.TimeoutError:
            raise SessionError(CLOSE_POLICY, f"idle for {self.config.idle_timeout_s:g} s; closing the stream") from None

    async def _stream(self, ws: Any) -> dict[str, Any]:
        from .separator import Separator

        loop = asyncio.get_running_loop()
        conf = parse_config(await self._recv(ws), self.config)
        try:
            # Construction + warmup may compile kernels (first session): off the loop.
            sep = await loop.run_in_executor(self._pool, lambda: Separator(
                conf["fs"], channels=conf["channels"], engine=conf["engine"], **conf["params"]).warmup())
        except (RtsepError, TypeError, ValueError) as exc:
            raise SessionError(CLOSE_POLICY, f"bad config: {exc}") from None
        ch, fs = conf["channels"], sep.fs
        dtype = FORMATS[conf["format"]]
        frame_size = ch * dtype.itemsize
        max_bytes = conf["block"] * frame_size
        await ws.send(json.dumps({
            "type": "ready", "latency_samples": sep.latency_samples, "engine": conf["engine"], "fs": fs,
            "channels": ch, "format": conf["format"], "out_format": conf["out_format"], "block": conf["block"],
            "max_frame_bytes": max_bytes}))
        frames = late = 0
        processing = 0.0
        swapped = False  # the client's {"type": "swap"}: return the channels the other way round
        interval = conf["stats_interval_s"]
        last_stats = (time.perf_counter(), 0.0, 0)  # (when, processing, samples) at the previous periodic stats
        while True:
            msg = await self._recv(ws)
            t_arrival = time.perf_counter()
            if isinstance(msg, str):
                try:
                    kind = json.loads(msg).get("type")
                except (ValueError, AttributeError):
                    kind = None
                if kind == "eof":
                    break
                if kind == "swap":
                    swapped = not swapped
                    await ws.send(json.dumps({"type": "swapped", "swapped": swapped}))
                    continue
                raise SessionError(CLOSE_POLICY, f'unexpected text message {msg[:60]!r}; send binary audio, '
                                                 f'{{"type": "swap"}} or {{"type": "eof"}}')
            n_bytes = len(msg)
            if n_bytes > max_bytes:
                raise SessionError(CLOSE_TOO_BIG, f"audio message of {n_bytes} bytes is larger than the declared block "
                                                  f"({conf['block']} frames = {max_bytes} bytes)")
            if n_bytes % frame_size:
                raise SessionError(CLOSE_UNSUPPORTED, f"audio message of {n_bytes} bytes is not a whole number of frames "
                                                      f"({ch} channels × {dtype.itemsize} bytes of {conf['format']})")
            x = np.frombuffer(msg, dtype=dtype).reshape(-1, ch)
            t0 = time.perf_counter()
            # Awaiting here before the next recv is the backpressure.
            voice, background = await loop.run_in_executor(self._pool, sep.process, x)
            dt = time.perf_counter() - t0
            if swapped:
                voice, background = background, voice
            await ws.send(_encode(voice, background, conf["out_format"]))
            n = x.shape[0]
            processing += dt
            frames += 1
            is_late = (time.perf_counter() - t_arrival) > n / fs
            late += is_late
            self.metrics.frames += 1
            self.metrics.samples += n
            self.metrics.late_frames += is_late
            self.metrics.processing_s += dt
            self.metrics.audio_s += n / fs
            if interval and t_arrival - last_stats[0] >= interval:
                recent_audio = (sep.stats.samples - last_stats[2]) / fs
                extra = {"final": False, "rtf_recent": (processing - last_stats[1]) / recent_audio if recent_audio else 0.0}
                await ws.send(json.dumps(_stats(sep, frames, late, processing, swapped) | extra, default=_jsonable))
                last_stats = (t_arrival, processing, sep.stats.samples)
        stats = _stats(sep, frames, late, processing, swapped) | {"final": True}
        await ws.send(json.dumps(stats, default=_jsonable))
        await ws.close(CLOSE_NORMAL, "eof")
        return {**stats, "engine": conf["engine"]}


def _peer(ws: Any) -> str:
    addr = getattr(ws, "remote_address", None)
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) and len(addr) >= 2 else "?"


def _respond(connection: Any, text: str, content_type: str, headers: dict[str, str] | None = None) -> Any:
    """A 200 response with its one Content-Type (``Headers`` is a multi-dict: assigning appends)."""
    resp = connection.respond(200, text)
    del resp.headers["Content-Type"]
    resp.headers["Content-Type"] = content_type
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def _stats(sep: Any, frames: int, late: int, processing: float, swapped: bool) -> dict[str, Any]:
    """The fields of a session's ``stats`` message (periodic and final)."""
    audio_s = sep.stats.samples / sep.fs
    return {"type": "stats", "samples": int(sep.stats.samples), "frames": frames, "late_frames": late,
            "processing_s": processing, "audio_s": audio_s, "rtf": processing / audio_s if audio_s else 0.0,
            "latency_samples": sep.latency_samples, "nonfinite": int(sep.stats.nonfinite),
            "clipped": int(sep.stats.clipped), "voice": sep.info().get("voice"), "swapped": swapped}


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


class ServerThread:
    """A server running in its own event loop on a background thread (tests, benchmarks, embedding).

    Parameters
    ----------
    config : ServiceConfig
        Address and limits (``port=0`` picks a free port).

    Examples
    --------
    >>> with ServerThread(ServiceConfig(port=0)) as srv:       # doctest: +SKIP
    ...     url = srv.url
    """

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self.config = config or ServiceConfig(port=0)
        self.server = SeparationServer(self.config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="rtsep-serve", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.server.stop()

        self._loop.run_until_complete(main())
        self._loop.close()

    def start(self, timeout: float = 30.0) -> "ServerThread":
        """Start and wait until the port is bound."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the rtsep server thread did not start in time")
        if self._error is not None:
            raise self._error
        return self

    @property
    def url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{self.config.host}:{self.server.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join its thread."""
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_server(config: ServiceConfig) -> None:
    """Serve until interrupted (blocking), printing the address on stderr."""
    import sys

    async def main() -> None:
        server = await SeparationServer(config).start()
        print(f"rtsep: serving on ws://{config.host}:{server.port} (browser client: http://{config.host}:{server.port}/, "
              f"health: /health, metrics: /metrics){'; token required' if config.token else ''}", file=sys.stderr, flush=True)
        try:
            await server.serve_forever()
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        pass


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rtsep serve``."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    p.add_argument("--token", default=None,
                   help="require this token in each stream's config (default: $RTSEP_TOKEN, else none)")
    p.add_argument("--max-sessions", type=int, default=32, help="concurrent streams (default 32)")
    p.add_argument("--max-frame-bytes", type=int, default=1 << 20, help="largest audio message in bytes (default 1 MiB)")
    p.add_argument("--idle-timeout", type=float, default=30.0, help="seconds without a message before a stream is closed (default 30)")
    p.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2),
                   help="threads running the separators (default: number of cores)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="also accept WebSocket streams from pages of this origin, e.g. https://app.example.org "
                        "(repeatable; default: only the server's own page and non-browser clients)")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the WebSocket separation server until Ctrl-C."""
    for name in ("max_sessions", "max_frame_bytes", "workers"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not args.idle_timeout > 0:
        raise ConfigError(f"--idle-timeout must be positive seconds, got {args.idle_timeout}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a TCP port (0 to 65535)")
    token = args.token if args.token is not None else (os.environ.get("RTSEP_TOKEN") or None)
    origins = tuple(normalize_origin(o) for o in args.allow_origin)
    import sys

    from .separator import Separator
    from .warm import compile_notice

    # before listening: otherwise the first stream of each engine waits for Numba (about a minute)
    for engine in ("td", "fd"):
        with compile_notice(engine, sys.stderr):
            Separator(16000, engine=engine).warmup()
    try:
        run_server(ServiceConfig(host=args.host, port=args.port, max_frame_bytes=args.max_frame_bytes,
                                 max_sessions=args.max_sessions, idle_timeout_s=args.idle_timeout,
                                 token=token, workers=args.workers, allow_origins=origins))
    except KeyboardInterrupt:  # Ctrl-C is how a server is meant to stop: not an error
        print("rtsep: server stopped", file=sys.stderr)
    return 0
