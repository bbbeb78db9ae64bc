"""Client of ``rtsep serve`` (synchronous), and ``rtsep client IN.wav --server URL --out DIR``.

The protocol is described in :mod:`rtsep.service`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import RtsepError
from .options import add_engine_options, engine_params, parse_channels
from .service import FORMATS, websockets_part


class ServiceError(RtsepError):
    """The server is unreachable, refused the stream, or closed it with an error."""

    exit_code = 7


class SeparationClient:
    """One stream to a separation server.

    Parameters
    ----------
    url : str
        ``ws://host:port`` of ``rtsep serve``.
    fs : float
        Sample rate (Hz).
    channels : int
        Microphones per frame.
    engine : {"td", "fd"}
        Engine the server runs for this stream.
    format : {"float32", "int16"}
        Sample format sent.
    block : int
        Largest block (frames) that will be sent in one message.
    params : dict, optional
        Engine parameters.
    token : str, optional
        Server token (default ``$RTSEP_TOKEN``).
    out_format : {"float32", "int16"}, optional
        Format of the answers (default: ``format``).
    timeout : float
        Seconds to wait for any one answer (and for the connection).

    Attributes
    ----------
    ready : dict
        The server's ``ready`` message (``latency_samples``, ``engine``, …).
    stats : dict or None
        The server's ``stats`` message after :meth:`close`.
    """

    def __init__(self, url: str, fs: float, channels: int = 2, engine: str = "td", format: str = "float32",
                 block: int = 256, params: dict[str, Any] | None = None, token: str | None = None,
                 out_format: str | None = None, timeout: float = 30.0) -> None:
        connect = websockets_part("sync.client", "rtsep client").connect
        if format not in FORMATS:
            raise ServiceError(f"format must be float32 or int16, got {format!r}")
        self.url, self.channels, self.format, self.block, self.timeout = url, int(channels), format, int(block), timeout
        self.out_format = out_format or format
        self.stats: dict[str, Any] | None = None
        try:
            # Entered by hand (not in a with-block) because the connection outlives this call;
            # __enter__ works on every websockets version >= 13, where connect() may be a
            # connection or a context manager returning one.
            self._ws = connect(url, open_timeout=timeout, close_timeout=timeout, max_size=None,
                               compression=None).__enter__()
        except (OSError, TimeoutError) as exc:
            raise ServiceError(f"cannot reach {url} ({exc}); is `rtsep serve` running there?") from None
        except Exception as exc:  # noqa: BLE001 - handshake refusals, bad URLs
            raise ServiceError(f"cannot open a WebSocket to {url}: {type(exc).__name__}: {exc}") from None
        token = token if token is not None else os.environ.get("RTSEP_TOKEN")
        conf: dict[str, Any] = {"fs": fs, "channels": self.channels, "engine": engine, "format": format,
                                "out_format": self.out_format, "block": self.block, "params": params or {}}
        if token:
            conf["token"] = token
        self._ws.send(json.dumps(conf))
        self.ready = self._json("ready")

    @property
    def latency_samples(self) -> int:
        """Algorithmic delay (samples) of the server's separator."""
        return int(self.ready["latency_samples"])

    def _recv(self) -> Any:
        from websockets.exceptions import ConnectionClosed

        try:
            return self._ws.recv(timeout=self.timeout)
        except TimeoutError:
            raise ServiceError(f"no answer from {self.url} within {self.timeout:g} s") from None
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            why = f"code {rcvd.code}: {rcvd.reason}" if rcvd is not None else "no close frame"
            raise ServiceError(f"{self.url} closed the stream ({why})") from None

    def _json(self, expect: str) -> dict[str, Any]:
        msg = self._recv()
        if isinstance(msg, bytes):
            raise ServiceError(f"expected a JSON {expect!r} message from {self.url}, got {len(msg)} bytes of audio")
        data = json.loads(msg)
        if data.get("type") == "error":
            self._ws.close()
            if "token" in str(data.get("message", "")):
                raise ServiceError(f"{self.url} wants a token and refused the one sent (if any): give the "
                                   "value the server was started with as --token T (or set RTSEP_TOKEN)")
            raise ServiceError(f"server refused the stream (code {data.get('code')}): {data.get('message')}")
        if data.get("type") != expect:
            raise ServiceError(f"expected a {expect!r} message from {self.url}, got {msg[:100]!r}")
        return data

    def send_block(self, block: np.ndarray) -> None:
        """Send one block of shape (n, channels) without waiting for its answer."""
        x = np.asarray(block)
        if x.ndim != 2 or x.shape[1] != self.channels or x.shape[0] > self.block:
            raise ServiceError(f"expected a block of shape (≤{self.block}, {self.channels}), got {x.shape}")
        if self.format == "int16" and x.dtype.kind == "f":
            x = np.clip(np.rint(x * 32768.0), -32768, 32767)
        elif self.format == "float32" and x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0  # the wire carries full scale ±1, as Separator would read it
        elif x.dtype.kind not in "fi":
            raise ServiceError(f"expected float or int16 samples, got dtype {x.dtype}")
        self._ws.send(np.ascontiguousarray(x, dtype=FORMATS[self.format]).tobytes())

    def recv_block(self) -> tuple[np.ndarray, np.ndarray]:
        """The answer to the oldest unanswered block: ``voice, background`` of shape (n,), float32 full scale."""
        msg = self._recv()
        if isinstance(msg, str):
            data = json.loads(msg)
            raise ServiceError(f"server error (code {data.get('code')}): {data.get('message', msg[:200])}")
        y = np.frombuffer(msg, dtype=FORMATS[self.out_format]).reshape(-1, 2)
        y = y.astype(np.float32) / 32768.0 if self.out_format == "int16" else y
        return y[:, 0].copy(), y[:, 1].copy()

    def process(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Separate one block remotely, like :meth:`rtsep.Separator.process`.

        Parameters
        ----------
        block : ndarray, shape (n, channels)
            Float (full scale ±1) or int16 samples; ``n`` ≤ ``block``. An
            empty block is answered locally (nothing is sent).

        Returns
        -------
        voice, background : ndarray, shape (n,), float32
        """
        if np.shape(block)[0] == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        self.send_block(block)
        return self.recv_block()

    def close(self) -> dict[str, Any]:
        """End the stream; returns the server's ``stats`` message."""
        if self.stats is None:
            self._ws.send(json.dumps({"type": "eof"}))
            self.stats = self._json("stats")
            self._ws.close()
        return self.stats

    def abort(self) -> None:
        """Drop the connection without ``eof``."""
        self._ws.close()

    def __enter__(self) -> "SeparationClient":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def stream_file(path: str | os.PathLike, server: str, out_dir: str | os.PathLike, engine: str = "td",
                block: int = 256, format: str = "float32", realtime: bool = False,
                channels: Sequence[int] | None = None, params: dict[str, Any] | None = None,
                token: str | None = None) -> dict[str, Any]:
    """Stream a recording through a server; write ``voice.wav``, ``background.wav``, ``timing.json``.

    Parameters
    ----------
    path : path
        Input recording (≥ 2 channels, any libsndfile format).
    server : str
        ``ws://host:port``.
    out_dir : path
        Output folder; outputs are aligned with the input like ``rtsep replay``.
    engine, block, format, channels, params, token
        As for :class:`SeparationClient` and ``rtsep replay``.
    realtime : bool
        Send one block per block duration, as a sound card would.

    Returns
    -------
    dict
        Contents of ``timing.json``: server ``stats``, round-trip latency
        percentiles (ms), wall time (s).
    """
    from .io_files import AlignedOutputWriter, AudioReader, output_subtype, prepare_out_dir

    rtts: list[float] = []
    with AudioReader(path, channels) as reader, ExitStack() as stack:
        out = prepare_out_dir(out_dir)  # before connecting: a bad folder costs the server nothing
        cli = stack.enter_context(
            SeparationClient(server, reader.fs, reader.channels, engine, format, block, params, token))
        lat = cli.latency_samples
        t_start = time.perf_counter()
        with AlignedOutputWriter(out, reader.fs, lat, subtype=output_subtype(reader.subtype)) as writer:
            emit = writer.write

            sent = 0
            for blk in reader.blocks(block):
                if realtime:
                    wait = t_start + sent / reader.fs - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                t0 = time.perf_counter()
                emit(*cli.process(blk))
                rtts.append(time.perf_counter() - t0)
                sent += blk.shape[0]
            for k in range(0, lat, block):  # flush the tail with zeros
                emit(*cli.process(np.zeros((min(block, lat - k), reader.channels), np.float32)))
        stats = cli.close()
    wall = time.perf_counter() - t_start
    ms = np.asarray(rtts) * 1e3
    timing = {"server": server, "engine": engine, "block": block, "format": format, "fs": reader.fs,
              "latency_samples": lat, "realtime": realtime, "wall_s": wall, "audio_s": reader.frames / reader.fs,
              "round_trip_ms_p50": float(np.percentile(ms, 50)) if ms.size else 0.0,
              "round_trip_ms_p99": float(np.percentile(ms, 99)) if ms.size else 0.0,
              "round_trip_ms_max": float(ms.max()) if ms.size else 0.0, "server_stats": stats, "input": str(path)}
    tmp = out / ".timing.json.part"
    tmp.write_text(json.dumps(timing, indent=2) + "\n")
    os.replace(tmp, out / "timing.json")
    return timing


def add_client_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rtsep client``."""
    p.add_argument("input", help="two-channel recording (WAV, FLAC, OGG…)")
    p.add_argument("--server", default="ws://127.0.0.1:8765", help="server URL (default ws://127.0.0.1:8765)")
    p.add_argument("-o", "--out", required=True, help="output folder for voice.wav, background.wav, timing.json")
    p.add_argument("--block", type=int, default=256, help="block length in samples (default 256)")
    p.add_argument("--format", choices=tuple(FORMATS), default="float32", help="sample format on the wire (default float32)")
    p.add_argument("--realtime", action="store_true", help="send at the recording's own pace, as a live microphone would")
    p.add_argument("--channels", help="1-based channels to use from a multichannel file, e.g. 1,2")
    p.add_argument("--token", default=None, help="server token (default: $RTSEP_TOKEN)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary")
    # the same default as `rtsep replay`: the same recording must not be separated differently
    add_engine_options(p, engine_help="engine the server runs for this stream: ", config=False)


def cmd_client(args: argparse.Namespace) -> int:
    """Stream a file through ``rtsep serve`` and write the separated WAVs."""
    t = stream_file(args.input, args.server, args.out, engine=args.engine, block=args.block, format=args.format,
                    realtime=args.realtime, channels=parse_channels(args.channels), params=engine_params(args),
                    token=args.token)
    if not args.quiet:
        s = t["server_stats"]
        print(f"rtsep: separated {t['audio_s']:.2f} s through {args.server} ({t['engine']}, block {t['block']}) in "
              f"{t['wall_s']:.3f} s; server real-time factor {s.get('rtf', 0):.4f}, late frames "
              f"{s.get('late_frames', 0)}; round trip p50 {t['round_trip_ms_p50']:.2f} ms, p99 "
              f"{t['round_trip_ms_p99']:.2f} ms; wrote {Path(args.out) / 'voice.wav'} and "
              f"{Path(args.out) / 'background.wav'}", file=sys.stderr if args.quiet else sys.stdout)
    return 0
