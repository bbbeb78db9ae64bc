"""Live separation: microphones in, voice and background out, through PortAudio.

This is the only module that imports :mod:`sounddevice`, and only inside
functions: ``import rtsep`` and every non-live command work on machines
without PortAudio; ``rtsep live`` and ``rtsep devices`` say what to install.

Data path (one full-duplex PortAudio stream)::

    PortAudio callback ─▶ copy selected mics into a preallocated block
                       ─▶ Separator.process ─▶ output channels (voice / background)
                       ─▶ record slot (preallocated) ─▶ queue ─▶ writer thread ─▶ WAVs

The callback never waits: the separator's kernels are compiled before the
stream opens, recording goes through a pool of preallocated slots (a full
pool drops the block, counts it and later writes silence of the same length
so the files stay aligned with time), and every status flag PortAudio raises
is counted. An exception inside the callback is kept, aborts the stream and
comes back from :meth:`LiveSession.poll` as one line.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import gc
import json
import logging
import math
import os
import queue
import resource
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import MAX_CHANNELS, check_rate
from .errors import AudioDeviceError, AudioFileError, ConfigError, DependencyError, RtsepError
from .keys import KeyReader
from .options import add_engine_options, engine_params

#: What ``--play`` accepts: which separated signal goes to the output device.
PLAY_MODES = ("voice", "background", "both", "none")
#: Default block (frames per callback): 16 ms at 16 kHz, 5.3 ms at 48 kHz.
DEFAULT_BLOCK = 256
#: A device latency PortAudio reports above this (s) is treated as unknown:
#: some host APIs (JACK with ports that declare no latency) report ~2^32 frames.
MAX_PLAUSIBLE_LATENCY_S = 10.0
#: How long (s) the stream may go without a callback before the device counts as gone.
STALL_TIMEOUT_S = 2.0
#: The first callback may come late (device start-up, servers rendering in big chunks).
FIRST_CALLBACK_TIMEOUT_S = 5.0
#: Seconds of audio the recorder can hold when the disk is slow.
RECORD_BUFFER_S = 4.0
#: Bound on how long stopping a stream may take (s): some drivers hang when their
#: device vanished (PortAudio's JACK host API does when the server died).
STOP_TIMEOUT_S = 2.0

_HINT = "run `rtsep devices` to see the audio devices"


class LiveCallbackError(RtsepError):
    """Processing failed inside the audio callback; the stream was stopped."""

    exit_code = 7


# ─────────────────────────────────────────────────────────────────── PortAudio access

def _sounddevice() -> Any:
    """Import :mod:`sounddevice`, turning a missing PortAudio into :class:`DependencyError`."""
    try:
        import sounddevice
    except OSError as exc:  # the wheel does not bundle PortAudio on Linux
        raise DependencyError(f"live audio needs the PortAudio library, which is missing ({_short(exc)}): "
                              "apt-get install libportaudio2; other rtsep commands work without it") from None
    except ImportError as exc:
        raise DependencyError(f"live audio needs the Python package sounddevice ({_short(exc)}): "
                              "pip install sounddevice") from None
    return sounddevice


def rescan_devices() -> None:
    """Make PortAudio list the devices again.

    PortAudio scans devices once, when it is initialised; a device that
    appeared later (a USB microphone plugged in, a JACK client started) is
    missing until it scans again. Only safe while no stream is open.
    """
    sd = _sounddevice()
    sd._terminate()
    sd._initialize()


@dataclass(frozen=True)
class DeviceInfo:
    """One audio device as PortAudio lists it.

    Attributes
    ----------
    index : int
        PortAudio device index (what ``--input``/``--output`` accept).
    name : str
        Device name (a unique part of it also works as ``--input``).
    hostapi : str
        Host API (ALSA, JACK Audio Connection Kit, Core Audio, WASAPI…).
    max_input_channels, max_output_channels : int
        Channel counts.
    default_samplerate : float
        The device's default sample rate (Hz).
    default_input, default_output : bool
        Whether it is the default input / output device.
    """

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool


def list_devices(rescan: bool = False) -> list[DeviceInfo]:
    """All audio devices PortAudio knows, in index order.

    Parameters
    ----------
    rescan : bool
        Scan again first (see :func:`rescan_devices`).
    """
    sd = _sounddevice()
    if rescan:
        rescan_devices()
    apis = sd.query_hostapis()
    din, dout = _default_indices(sd)
    out = []
    for d in sd.query_devices():
        out.append(DeviceInfo(index=int(d["index"]), name=str(d["name"]),
                              hostapi=str(apis[d["hostapi"]]["name"]),
                              max_input_channels=int(d["max_input_channels"]),
                              max_output_channels=int(d["max_output_channels"]),
                              default_samplerate=float(d["default_samplerate"]),
                              default_input=int(d["index"]) == din,
                              default_output=int(d["index"]) == dout))
    return out


def _default_indices(sd: Any) -> tuple[int, int]:
    try:
        din, dout = sd.default.device
    except Exception:  # noqa: BLE001 - a broken default is simply "no default"
        return -1, -1
    return (int(din) if din is not None else -1), (int(dout) if dout is not None else -1)


def _device_spec(spec: str | int | None) -> str | int | None:
    if spec is None or isinstance(spec, int):
        return spec
    s = str(spec).strip()
    if s == "" or s.lower() == "default":
        return None
    return int(s) if s.isdigit() else s


def resolve_device(spec: str | int | None, kind: str) -> DeviceInfo:
    """Find the input or output device a user means.

    Parameters
    ----------
    spec : str, int or None
        Index, a unique part of the name, or None / "default" for the default device.
    kind : {"input", "output"}
        Which direction is needed.

    Raises
    ------
    AudioDeviceError
        No such device, several match, or it has no channels in that direction.
    """
    sd = _sounddevice()
    spec = _device_spec(spec)
    for attempt in range(2):
        try:
            idx = _query_index(sd, spec, kind)
            break
        except AudioDeviceError:
            # A device started after PortAudio's start-up scan (USB mic, JACK client)
            # is invisible until a rescan; one rescan, then give up. Rescanning
            # re-initialises PortAudio, which would kill streams already open here.
            if attempt or LiveSession.open_streams:
                raise
            rescan_devices()
    for d in list_devices():
        if d.index == idx:
            return d
    raise AudioDeviceError(f"{kind} device {spec!r} vanished while it was being opened; {_HINT}")


def _query_index(sd: Any, spec: str | int | None, kind: str) -> int:
    if spec is None:
        din, dout = _default_indices(sd)
        idx = din if kind == "input" else dout
        if idx < 0:
            raise AudioDeviceError(f"there is no default {kind} device (no sound card, or the audio server "
                                   f"is not running); give one with --{kind}; {_HINT}")
        return idx
    try:
        info = sd.query_devices(spec, kind)
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith("Multiple"):
            raise AudioDeviceError(f"several {kind} devices match {spec!r}; give its index or a longer "
                                   f"part of its name; {_HINT}") from None
        raise AudioDeviceError(f"no {kind} device matches {spec!r}; {_HINT}") from None
    except sd.PortAudioError:
        raise AudioDeviceError(f"there is no audio device with index {spec}; {_HINT}") from None
    return int(info["index"])


def device_error(exc: BaseException, what: str, rate: float | None = None,
                 default_rate: float | None = None) -> AudioDeviceError:
    """Turn a PortAudio failure into one line saying what is wrong and what to do.

    Parameters
    ----------
    exc : BaseException
        The exception from sounddevice / PortAudio.
    what : str
        The device(s) concerned, e.g. ``"input device 'USB mic' (ALSA)"``.
    rate : float, optional
        The sample rate asked for (Hz).
    default_rate : float, optional
        The device's default rate (Hz), suggested when the rate is refused.
    """
    args = getattr(exc, "args", ())
    code = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    text = _short(exc)
    low = text.lower()
    if code == -9997 or "sample rate" in low:
        alt = f"; its default is {default_rate:g} Hz (--rate {default_rate:g})" if default_rate else ""
        return AudioDeviceError(f"{what} does not support {rate:g} Hz{alt}; {_HINT}" if rate else
                                f"{what} refuses the sample rate{alt}; {_HINT}")
    if code == -9985 or "unavailable" in low or "busy" in low:
        return AudioDeviceError(f"{what} is busy or unavailable (another program may be using it); "
                                f"close that program or choose another device; {_HINT}")
    if code == -9998 or "number of channels" in low:
        return AudioDeviceError(f"{what} does not offer that many channels; {_HINT}")
    if code == -9993 or "illegal combination" in low:
        return AudioDeviceError(f"{what}: input and output must be on the same host API (both ALSA, both "
                                f"JACK…), or use --play none; {_HINT}")
    if code == -9996 or "invalid device" in low or "querying device" in low:
        return AudioDeviceError(f"{what} is not a valid device (unplugged?); {_HINT}")
    return AudioDeviceError(f"{what} could not be opened ({text}); {_HINT}")


# ─────────────────────────────────────────────────────────────────── configuration

@dataclass(frozen=True)
class LiveConfig:
    """What a live session opens and how.

    Attributes
    ----------
    input, output : str, int or None
        Device index, unique part of the name, or None for the default.
    channels : tuple of int
        1-based input channels used as microphones (≥ 2 distinct, default 1, 2).
    rate : float or None
        Sample rate (Hz); None takes the input device's default rate.
    block : int
        Frames per callback (and per :meth:`Separator.process` call).
    engine : str
        Separation engine name ("td", "fd").
    play : {"voice", "background", "both", "none"}
        What goes to the output device: one signal on every output channel
        (at most 2), voice on channel 1 and background on channel 2, or no
        output stream at all.
    record : Path or None
        Folder for ``input.wav``, ``voice.wav``, ``background.wav`` and
        ``session.json``; None records nothing.
    latency : str or float
        PortAudio suggested latency: "low", "high" or seconds.
    params : dict
        Engine parameters passed to :class:`rtsep.Separator`.
    """

    input: str | int | None = None
    output: str | int | None = None
    channels: tuple[int, ...] = (1, 2)
    rate: float | None = None
    block: int = DEFAULT_BLOCK
    engine: str = "td"
    play: str = "voice"
    record: Path | None = None
    latency: str | float = "high"
    params: dict[str, Any] = field(default_factory=dict)

    def validated(self) -> "LiveConfig":
        """Check the values that do not need a device; returns self."""
        ch = tuple(int(c) for c in self.channels)
        if len(ch) < 2 or len(set(ch)) != len(ch) or min(ch) < 1:
            raise ConfigError(f"--channels {','.join(map(str, ch))}: give at least 2 distinct 1-based "
                              "input channel numbers, e.g. --channels 1,2")
        if len(ch) > MAX_CHANNELS:
            raise ConfigError(f"--channels: at most {MAX_CHANNELS} microphones, got {len(ch)}")
        if not 16 <= int(self.block) <= 16384:
            raise ConfigError(f"--block {self.block}: frames per block must be from 16 to 16384 (default {DEFAULT_BLOCK})")
        if self.play not in PLAY_MODES:
            raise ConfigError(f"--play {self.play!r}: choose one of {', '.join(PLAY_MODES)}")
        if self.rate is not None:
            check_rate(self.rate)
        if isinstance(self.latency, str) and self.latency not in ("low", "high"):
            raise ConfigError(f"--latency {self.latency!r}: give low, high or a number of seconds")
        if not isinstance(self.latency, str) and not 0 < float(self.latency) <= 2:
            raise ConfigError(f"--latency {self.latency}: seconds must be in (0, 2]")
        return self


# ─────────────────────────────────────────────────────────────────── statistics

@dataclass
class LiveStats:
    """A snapshot of a live session, for the dashboard, the summary and tests.

    Times are in seconds, levels in dBFS, loads as fractions (1.0 = 100 %).

    Attributes
    ----------
    state : str
        "idle", "running", "stopped" or "failed".
    elapsed_s : float
        Wall-clock time since the stream started.
    fs : float
        Sample rate (Hz).
    block : int
        Frames per callback.
    frames : int
        Frames processed (per channel).
    callbacks : int
        Callbacks run.
    xruns : int
        Callbacks PortAudio flagged with an input overflow or output underflow
        (audio was lost or a gap was played).
    input_overflows, input_underflows, output_underflows, output_overflows : int
        Each PortAudio status flag, counted separately.
    dropped_record_blocks : int
        Blocks the recorder could not take because the disk lagged (written as silence).
    recorded_frames : int
        Frames written to the recording files so far.
    peak_dbfs, rms_dbfs : list of float
        Input level per microphone since the previous snapshot (-inf for silence).
    clipped : int
        Input samples at or beyond full scale so far.
    voice_index : int or None
        Which separated output the engine currently labels as the voice.
    label_moves : int
        How often the automatic label moved the voice to the other output.
    user_swaps : int
        How often the user swapped voice and background (the swap key).
    play : str
        What the output device plays.
    output_map : str
        Human description of the output channels, e.g. "out 1 = voice, out 2 = background".
    device_latency_in_s, device_latency_out_s : float or None
        PortAudio's stream latencies (buffering included); None if the driver
        reported nothing plausible.
    engine_latency_s : float
        The separator's algorithmic delay.
    total_latency_s : float or None
        Input-to-output delay: device in + out + engine (None if unknown).
    cpu_load : float
        PortAudio's callback CPU load (fraction of the callback period).
    rtf_mean, rtf_max, rtf_p99 : float
        Time spent in the callback per second of audio (mean, worst block,
        99th percentile of recent blocks).
    process_cpu : float
        CPU time of the whole process (all threads) per wall-clock second.
    input_name, output_name, hostapi : str
        Devices in use.
    record_dir : str or None
        Recording folder.
    stop_reason : str
        Why the session ended ("duration", "Ctrl-C", "error", "stopped").
    """

    state: str = "idle"
    elapsed_s: float = 0.0
    fs: float = 0.0
    block: int = 0
    frames: int = 0
    callbacks: int = 0
    xruns: int = 0
    input_overflows: int = 0
    input_underflows: int = 0
    output_underflows: int = 0
    output_overflows: int = 0
    dropped_record_blocks: int = 0
    recorded_frames: int = 0
    peak_dbfs: list[float] = field(default_factory=list)
    rms_dbfs: list[float] = field(default_factory=list)
    clipped: int = 0
    voice_index: int | None = None
    label_moves: int = 0
    user_swaps: int = 0
    play: str = "voice"
    output_map: str = ""
    device_latency_in_s: float | None = None
    device_latency_out_s: float | None = None
    engine_latency_s: float = 0.0
    total_latency_s: float | None = None
    cpu_load: float = 0.0
    rtf_mean: float = 0.0
    rtf_max: float = 0.0
    rtf_p99: float = 0.0
    process_cpu: float = 0.0
    input_name: str = ""
    output_name: str = ""
    hostapi: str = ""
    record_dir: str | None = None
    stop_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite levels become None)."""
        d = asdict(self)
        for k in ("peak_dbfs", "rms_dbfs"):
            d[k] = [v if math.isfinite(v) else None for v in d[k]]
        return d


# ─────────────────────────────────────────────────────────────────── recorder

class _Recorder:
    """Writes input, voice and background WAVs from a thread fed by the callback.

    The callback copies a block into a free slot of a preallocated pool and
    queues the slot's number; the writer thread writes it and frees the slot.
    When no slot is free the block is dropped and counted, and the writer
    later writes that many frames of silence, so the files keep time.
    """

    def __init__(self, folder: Path, fs: int, mics: int, block: int) -> None:
        from .io_files import AtomicWavWriter

        self.folder = folder
        slots = max(16, math.ceil(RECORD_BUFFER_S * fs / block))
        self._pool = np.zeros((slots, block, mics + 2), dtype=np.float32)  # touched now, not in the callback
        self._free: collections.deque[int] = collections.deque(range(slots))
        self._full: queue.SimpleQueue = queue.SimpleQueue()
        self._mics = mics
        self._gap = 0
        self.dropped = 0
        self.frames = 0
        self.error: BaseException | None = None
        self._writers = {}
        try:
            for name, ch in (("input", mics), ("voice", 1), ("background", 1)):
                self._writers[name] = AtomicWavWriter(folder / f"{name}.wav", fs, ch)
        except BaseException:
            self._close_writers()
            raise
        self._thread = threading.Thread(target=self._run, name="rtsep-recorder", daemon=True)
        self._thread.start()

    def push(self, x: np.ndarray, v: np.ndarray, b: np.ndarray) -> None:
        """Queue one block (callback thread; never blocks)."""
        n = x.shape[0]
        try:
            k = self._free.popleft()
        except IndexError:
            self.dropped += 1
            self._gap += n
            return
        slot = self._pool[k]
        if n > slot.shape[0]:  # a host that overshoots the block size: keep what fits
            n = slot.shape[0]
        m = self._mics
        slot[:n, :m] = x[:n]
        slot[:n, m] = v[:n]
        slot[:n, m + 1] = b[:n]
        gap, self._gap = self._gap, 0
        self._full.put((k, n, gap))

    def _run(self) -> None:
        m = self._mics
        zeros = np.zeros((self._pool.shape[1], m + 2), dtype=np.float32)
        while True:
            item = self._full.get()
            if item is None:
                return
            k, n, gap = item
            try:
                if self.error is None:
                    while gap > 0:
                        g = min(gap, zeros.shape[0])
                        self._write(zeros[:g], m)
                        gap -= g
                    if n:
                        self._write(self._pool[k, :n], m)
            except BaseException as exc:  # noqa: BLE001 - reported by poll(), audio goes on
                self.error = exc
            finally:
                if k >= 0:
                    self._free.append(k)

    def _write(self, blk: np.ndarray, m: int) -> None:
        self._writers["input"].write(blk[:, :m])
        self._writers["voice"].write(blk[:, m])
        self._writers["background"].write(blk[:, m + 1])
        self.frames += blk.shape[0]

    def close(self, timeout: float = 10.0) -> dict[str, Path]:
        """Write what is queued, finish the files and give them their final names."""
        if self._gap:  # blocks dropped at the very end still count as time
            self._full.put((-1, 0, self._gap))
            self._gap = 0
        self._full.put(None)
        self._thread.join(timeout)
        return self._close_writers()

    def _close_writers(self) -> dict[str, Path]:
        out = {}
        for name, w in self._writers.items():
            try:
                out[name] = w.close()
            except BaseException as exc:  # noqa: BLE001
                self.error = self.error or exc
        return out


# ─────────────────────────────────────────────────────────────────── session

class LiveSession:
    """A running separation between an input device and an output device.

    Parameters
    ----------
    config : LiveConfig
        Devices, rate, block, engine, output and recording choices.
    separator : object, optional
        A ready :class:`rtsep.Separator` (or an object with the same
        ``process``/``warmup``/``latency_samples``/``info``); built from
        ``config`` when omitted. Its kernels are compiled in :meth:`open`.
    notice : text stream, optional
        Where :meth:`open` says that the kernels are being compiled, if they
        are (the first run on a machine); None says nothing.

    Notes
    -----
    Use as a context manager, or call :meth:`open` (checks devices, builds and
    compiles the separator, opens the stream), :meth:`start`, then
    :meth:`poll` periodically (it raises the errors of the callback, the
    device and the recorder) and finally :meth:`stop`, which always leaves
    the recorded files valid. ``stats`` gives a :class:`LiveStats` snapshot.
    """

    #: Streams currently open in this process (PortAudio must not be rescanned under them).
    open_streams: int = 0

    def __init__(self, config: LiveConfig, separator: Any = None, notice: Any = None) -> None:
        self.config = config.validated()
        self._sep = separator
        self._notice = notice
        self._stream: Any = None
        self._sd: Any = None
        self._rec: _Recorder | None = None
        self._state = "idle"
        self._stop_reason = ""
        self._error: BaseException | None = None
        self._error_tb = ""
        self._failure = ""
        self._wedged = False
        self._stopped = False
        self._cpu_load_last = 0.0
        self._t_start = 0.0
        self._t_stop = 0.0
        self._ru_start = 0.0
        self._ru_stop = 0.0
        self.fs = 0.0
        self.input_device: DeviceInfo | None = None
        self.output_device: DeviceInfo | None = None
        self.device_latency: tuple[float | None, float | None] = (None, None)
        self.preflight_rtf = 0.0
        self.files: dict[str, Path] = {}
        self._reset_counters(2)

    # ── counters (written by the callback thread, read by anyone)

    def _reset_counters(self, mics: int) -> None:
        self._frames = 0
        self._callbacks = 0
        self._xruns = 0
        self._in_over = 0
        self._in_under = 0
        self._out_under = 0
        self._out_over = 0
        self._busy = 0.0
        self._busy_max = 0.0
        self._durations = np.zeros(1024)
        self._last_cb = 0.0
        self._peak = np.zeros(mics)
        self._sumsq = np.zeros(mics)
        self._level_frames = 0
        self._swaps_asked = 0
        self._swaps_done = 0

    # ── set-up

    def open(self) -> "LiveSession":
        """Check the devices, compile the separator and open (not start) the stream.

        Raises
        ------
        AudioDeviceError, DependencyError, ConfigError
            With one line naming the problem and what to do.
        """
        if self._stream is not None:
            return self
        cfg = self.config
        sd = self._sd = _sounddevice()
        ind = self.input_device = resolve_device(cfg.input, "input")
        outd = self.output_device = resolve_device(cfg.output, "output") if cfg.play != "none" else None
        what_in = f"input device {ind.name!r} ({ind.hostapi})"
        if ind.max_input_channels < 2:
            raise AudioDeviceError(
                f"{what_in} has {ind.max_input_channels} input channel(s), but separation needs two microphones; "
                f"choose a stereo (2-channel) input with --input; {_HINT}")
        sel = np.asarray(cfg.channels, dtype=np.int64) - 1
        if int(sel.max()) >= ind.max_input_channels:
            raise AudioDeviceError(f"--channels {','.join(map(str, cfg.channels))} does not fit {what_in}, which has "
                                   f"{ind.max_input_channels} input channels; {_HINT}")
        n_in = int(sel.max()) + 1
        mics = len(sel)

        if cfg.rate is not None:
            fs = float(cfg.rate)
        else:
            fs = float(ind.default_samplerate)
            try:
                check_rate(fs)
            except ConfigError:
                raise ConfigError(f"{what_in} defaults to {fs:g} Hz, outside the 8000–96000 Hz rtsep supports; "
                                  "choose one with --rate (e.g. --rate 48000)") from None
        self.fs = fs

        n_out = 0
        what_out = ""
        if outd is not None:
            what_out = f"output device {outd.name!r} ({outd.hostapi})"
            if outd.max_output_channels < 1:
                raise AudioDeviceError(f"{what_out} has no output channels; choose another --output or "
                                       f"use --play none; {_HINT}")
            if cfg.play == "both" and outd.max_output_channels < 2:
                raise AudioDeviceError(f"--play both needs 2 output channels, {what_out} has 1; use --play voice "
                                       f"or another --output; {_HINT}")
            n_out = 2 if cfg.play == "both" else min(2, outd.max_output_channels)

        try:
            sd.check_input_settings(device=ind.index, channels=n_in, dtype="float32", samplerate=fs)
        except Exception as exc:  # noqa: BLE001 - PortAudioError or ValueError, both mapped
            raise device_error(exc, what_in, fs, ind.default_samplerate) from None
        if outd is not None:
            try:
                sd.check_output_settings(device=outd.index, channels=n_out, dtype="float32", samplerate=fs)
            except Exception as exc:  # noqa: BLE001
                raise device_error(exc, what_out, fs, outd.default_samplerate) from None

        if self._sep is None:
            from .separator import Separator
            try:
                self._sep = Separator(fs, channels=mics, engine=cfg.engine, **cfg.params)
            except ImportError as exc:
                raise ConfigError(f"engine {cfg.engine!r} is not available in this installation ({_short(exc)})") from None
        from .warm import compile_notice

        with compile_notice(cfg.engine, self._notice):
            self._sep.warmup()  # numba compiles here, never inside the callback
        self.preflight_rtf = self._preflight(mics)

        # Everything the callback touches is allocated here, once.
        self._sel = sel
        self._sel_identity = bool(np.array_equal(sel, np.arange(mics)))
        self._x = np.zeros((cfg.block, mics), dtype=np.float32)
        self._n_out = n_out
        self._reset_counters(mics)

        kwargs = dict(samplerate=fs, blocksize=int(cfg.block), dtype="float32", latency=cfg.latency,
                      finished_callback=self._finished)
        what = what_in if outd is None else (what_in if outd.index == ind.index else f"{what_in} with {what_out}")
        try:
            if outd is None:
                self._stream = sd.InputStream(device=ind.index, channels=n_in, callback=self._input_callback,
                                              **kwargs)
            else:
                self._stream = sd.Stream(device=(ind.index, outd.index), channels=(n_in, n_out),
                                         callback=self._callback, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise device_error(exc, what, fs, ind.default_samplerate) from None
        LiveSession.open_streams += 1

        lat = self._stream.latency
        lin, lout = (lat, None) if outd is None else lat
        self.device_latency = (_plausible(lin), _plausible(lout) if outd is not None else None)

        if cfg.record is not None:
            try:
                self._rec = _Recorder(Path(cfg.record), int(round(fs)), mics, int(cfg.block))
            except BaseException:
                self._close_stream()
                raise
        return self

    def _preflight(self, mics: int) -> float:
        """Time a throw-away separator on noise: per-block cost / block duration."""
        try:
            probe = type(self._sep)(self.fs, channels=mics, engine=self.config.engine, **self.config.params)
            probe.warmup()
        except Exception:  # noqa: BLE001 - a custom separator may not support this; skip the estimate
            return 0.0
        rng = np.random.default_rng(0)
        x = (0.05 * rng.standard_normal((self.config.block, mics))).astype(np.float32)
        probe.process(x)  # first call pays one-off Python costs
        t0 = time.perf_counter()
        reps = 20
        for _ in range(reps):
            probe.process(x)
        return (time.perf_counter() - t0) / reps / (self.config.block / self.fs)

    # ── the audio callback (PortAudio's thread)

    def _callback(self, indata: np.ndarray, outdata: np.ndarray | None, frames: int,
                  time_info: Any, status: Any) -> None:
        t0 = time.perf_counter()
        self._last_cb = time.monotonic()
        if status:
            # Never ignored: each flag means audio was lost or a gap was played.
            over, under = status.input_overflow, status.output_underflow
            if over:
                self._in_over += 1
            if under:
                self._out_under += 1
            if status.input_underflow:
                self._in_under += 1
            if status.output_overflow:
                self._out_over += 1
            if over or under:
                self._xruns += 1
        try:
            x = self._x[:frames] if frames <= self._x.shape[0] else np.empty((frames, self._x.shape[1]), np.float32)
            if self._sel_identity:
                x[...] = indata[:, :x.shape[1]]
            else:
                np.take(indata, self._sel, axis=1, out=x)
            if self._swaps_done != self._swaps_asked:
                # applied here, between two blocks, so the swap never races a block
                self._sep.swap_voice()
                self._swaps_done = self._swaps_asked
            v, b = self._sep.process(x)
            if outdata is not None:
                play = self.config.play
                if play == "both":
                    outdata[:, 0] = v
                    outdata[:, 1] = b
                else:
                    sig = v if play == "voice" else b
                    for c in range(outdata.shape[1]):
                        outdata[:, c] = sig
            # levels for the meters: small reductions, no per-sample temporaries
            np.maximum(self._peak, x.max(axis=0), out=self._peak)
            np.maximum(self._peak, -x.min(axis=0), out=self._peak)
            self._sumsq += np.einsum("ij,ij->j", x, x)
            self._level_frames += frames
            if self._rec is not None:
                self._rec.push(x, v, b)
            self._frames += frames
        except Exception as exc:  # noqa: BLE001 - kept and raised by poll() in the main thread
            if self._error is None:
                self._error = exc
                self._error_tb = traceback.format_exc()
            if outdata is not None:
                outdata.fill(0.0)
            raise self._sd.CallbackAbort from None
        finally:
            dt = time.perf_counter() - t0
            self._busy += dt
            if dt > self._busy_max:
                self._busy_max = dt
            self._durations[self._callbacks & 1023] = dt
            self._callbacks += 1

    def swap_voice(self) -> None:
        """Swap voice and background from the next block on (the dashboard's key); pins the label."""
        if not hasattr(self._sep, "swap_voice"):
            raise ConfigError("this separator cannot swap its outputs")
        self._swaps_asked += 1

    def _input_callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._callback(indata, None, frames, time_info, status)

    def _finished(self) -> None:
        self._t_stop = self._t_stop or time.monotonic()

    # ── running

    def start(self) -> "LiveSession":
        """Open (if needed) and start the stream."""
        self.open()
        if self._state == "running":
            return self
        # Long-lived objects leave the collector's view, so a collection set off by the
        # callback's small temporaries stays short.
        gc.collect()
        gc.freeze()
        self._ru_start = _cpu_seconds()
        self._t_start = time.monotonic()
        self._last_cb = 0.0
        try:
            self._stream.start()
        except Exception as exc:  # noqa: BLE001
            self._state = "failed"
            raise device_error(exc, f"the stream on {self.input_device.name!r}", self.fs,
                               self.input_device.default_samplerate) from None
        self._state = "running"
        return self

    def poll(self) -> LiveStats:
        """Check on the session; return a snapshot.

        Raises
        ------
        LiveCallbackError
            The separator (or the callback) raised; the stream was stopped.
        AudioDeviceError
            The device stopped delivering audio (unplugged, server gone).
        AudioFileError
            Writing the recording failed (disk full…).
        """
        if self._state == "running":
            now = time.monotonic()
            t_run = now - self._t_start
            err: RtsepError | None = None
            if self._error is not None:
                err = LiveCallbackError(
                    f"processing failed inside the audio callback after {t_run:.1f} s "
                    f"({type(self._error).__name__}: {_short(self._error)}); the stream was stopped"
                    + self._kept_note())
                t_fail = self._t_stop or now
            elif self._rec is not None and self._rec.error is not None:
                err = AudioFileError(f"recording to {self._rec.folder} failed after {t_run:.1f} s "
                                     f"({_short(self._rec.error)}); the files hold what was written before; "
                                     "check the free space and permissions")
                t_fail = now
            else:
                gone = not self._stream_active()
                last = self._last_cb
                silent = (now - last > STALL_TIMEOUT_S) if last else (t_run > FIRST_CALLBACK_TIMEOUT_S)
                if gone or silent:
                    how = ("stopped" if gone else
                           f"delivered no audio for {STALL_TIMEOUT_S if last else FIRST_CALLBACK_TIMEOUT_S:g} s")
                    err = AudioDeviceError(
                        f"the audio device {self._device_names()} {how} after {t_run:.1f} s (unplugged, or its "
                        f"audio server quit?)" + self._kept_note() + f"; {_HINT}")
                    t_fail = last or now
            if err is not None:
                self._state, self._t_stop, self._failure = "failed", t_fail, str(err)
                raise err
        return self.stats

    def _device_names(self) -> str:
        ind, outd = self.input_device, self.output_device
        if outd is None or outd.index == ind.index:
            return repr(ind.name)
        return f"{ind.name!r} or {outd.name!r}"

    def _read_cpu_load(self) -> float:
        try:
            return float(self._stream.cpu_load)
        except Exception:  # noqa: BLE001 - a vanished device may refuse queries
            return 0.0

    def _stream_active(self) -> bool:
        try:
            return bool(self._stream.active)
        except Exception:  # noqa: BLE001 - a stream whose device vanished may refuse queries
            return False

    def _kept_note(self) -> str:
        if self._rec is None:
            return ""
        return f"; the recording up to that point is in {self._rec.folder}"

    def stop(self, reason: str = "stopped") -> LiveStats:
        """Stop the stream and finish the recording; always leaves valid files.

        Parameters
        ----------
        reason : str
            Why, for the summary ("duration", "Ctrl-C", "error"…).

        Returns
        -------
        LiveStats
            The final snapshot.
        """
        if self._stopped:
            return self.stats
        self._stopped = True
        self._stop_reason = self._stop_reason or reason
        if self._state == "running":
            self._t_stop = time.monotonic()
        self._ru_stop = _cpu_seconds()
        self._cpu_load_last = self._read_cpu_load()
        self._close_stream()
        if self._rec is not None:
            self.files = self._rec.close()
            if self._rec.error is not None and self._state != "failed":
                self._state = "failed"
        if gc.get_freeze_count():
            gc.unfreeze()
        if self._state != "failed":
            self._state = "stopped"
        final = self.stats
        if self._rec is not None:
            self._write_session_json(final)
        return final

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        LiveSession.open_streams -= 1

        def _stop() -> None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # noqa: BLE001 - stopping a dead device is best effort
                pass

        # Stopping happens in a helper thread with a deadline: when a device vanished some
        # drivers block forever (PortAudio/JACK after the server died), and the files
        # must still be finished.
        t = threading.Thread(target=_stop, name="rtsep-stream-stop", daemon=True)
        t.start()
        t.join(STOP_TIMEOUT_S)
        if t.is_alive():
            self._wedged = True
            # PortAudio's own exit handler would block in the same way at interpreter exit.
            handler = getattr(self._sd, "_exit_handler", None)
            if handler is not None:
                atexit.unregister(handler)

    def _write_session_json(self, final: LiveStats) -> None:
        folder = self._rec.folder
        cfg = self.config
        doc = {
            "stats": final.to_json(),
            "config": {"input": cfg.input, "output": cfg.output, "channels": list(cfg.channels),
                       "rate": self.fs, "block": cfg.block, "engine": cfg.engine, "play": cfg.play,
                       "latency": cfg.latency, "params": cfg.params},
            "files": {k: str(v) for k, v in self.files.items()},
            "alignment": "voice.wav[i] and background.wav[i] answer input.wav[i - engine latency]",
            "preflight_rtf": self.preflight_rtf,
            "driver_hung_on_stop": self._wedged,
            "error": self._failure or None,
            "error_traceback": self._error_tb or None,
        }
        tmp = folder / ".session.json.part"
        try:
            tmp.write_text(json.dumps(doc, indent=2, default=str))
            os.replace(tmp, folder / "session.json")
            self.files["session"] = folder / "session.json"
        except OSError:
            pass  # the WAVs matter; a missing summary file is not worth failing for

    # ── observation

    @property
    def separator(self) -> Any:
        """The separator the callback feeds."""
        return self._sep

    @property
    def started(self) -> bool:
        """True once :meth:`start` has started the stream (even if it failed later)."""
        return self._t_start > 0.0

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` or a failure."""
        return self._state == "running"

    @property
    def stats(self) -> LiveStats:
        """A :class:`LiveStats` snapshot (resets the level meters' interval)."""
        fs = self.fs or 1.0
        block = int(self.config.block)
        end = self._t_stop if self._state != "running" and self._t_stop else time.monotonic()
        elapsed = max(0.0, end - self._t_start) if self._t_start else 0.0
        ru_end = self._ru_stop if self._state != "running" and self._ru_stop else _cpu_seconds()
        audio_s = self._frames / fs
        n_dur = min(self._callbacks, self._durations.shape[0])
        p99 = float(np.percentile(self._durations[:n_dur], 99)) if n_dur else 0.0
        lf = self._level_frames
        peak, sumsq = self._peak.copy(), self._sumsq.copy()
        self._peak.fill(0.0)
        self._sumsq.fill(0.0)
        self._level_frames = 0
        with np.errstate(divide="ignore"):
            peak_db = (20 * np.log10(peak)).tolist() if lf else [-math.inf] * len(peak)
            rms_db = (10 * np.log10(sumsq / lf)).tolist() if lf else [-math.inf] * len(peak)
        voice, moves = None, 0
        if self._sep is not None:
            try:
                info = self._sep.info()
                voice, moves = info.get("voice"), int(info.get("label_moves", 0))
            except Exception:  # noqa: BLE001 - diagnostics only
                voice = None
        lin, lout = self.device_latency
        eng = (self._sep.latency_samples / fs) if self._sep is not None else 0.0
        if self.config.play == "none":
            total = None if lin is None else lin + eng
        else:
            total = None if (lin is None or lout is None) else lin + lout + eng
        cpu = self._read_cpu_load() if self._stream is not None else self._cpu_load_last
        sep_stats = getattr(self._sep, "stats", None)
        return LiveStats(
            state=self._state, elapsed_s=elapsed, fs=self.fs, block=block, frames=self._frames,
            callbacks=self._callbacks, xruns=self._xruns, input_overflows=self._in_over,
            input_underflows=self._in_under, output_underflows=self._out_under,
            output_overflows=self._out_over,
            dropped_record_blocks=self._rec.dropped if self._rec else 0,
            recorded_frames=self._rec.frames if self._rec else 0,
            peak_dbfs=peak_db, rms_dbfs=rms_db,
            clipped=int(getattr(sep_stats, "clipped", 0)),
            voice_index=None if voice is None else int(voice), label_moves=moves,
            user_swaps=self._swaps_done, play=self.config.play,
            output_map=self._output_map(),
            device_latency_in_s=lin, device_latency_out_s=lout, engine_latency_s=eng,
            total_latency_s=total, cpu_load=cpu,
            rtf_mean=self._busy / audio_s if audio_s else 0.0,
            rtf_max=self._busy_max / (block / fs), rtf_p99=p99 / (block / fs),
            process_cpu=(ru_end - self._ru_start) / elapsed if elapsed > 0 else 0.0,
            input_name=self.input_device.name if self.input_device else "",
            output_name=self.output_device.name if self.output_device else "",
            hostapi=self.input_device.hostapi if self.input_device else "",
            record_dir=str(self._rec.folder) if self._rec else None,
            stop_reason=self._stop_reason,
        )

    def _output_map(self) -> str:
        play, n_out = self.config.play, getattr(self, "_n_out", 0)
        if play == "none":
            return "no output"
        if play == "both":
            return "out 1 = voice, out 2 = background"
        return f"out {'1+2' if n_out > 1 else '1'} = {play}"

    # ── context manager

    def __enter__(self) -> "LiveSession":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop("error" if exc[0] is not None else "stopped")


def _plausible(lat: Any) -> float | None:
    try:
        v = float(lat)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and 0.0 <= v < MAX_PLAUSIBLE_LATENCY_S else None


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


# ─────────────────────────────────────────────────────────────────── CLI commands

def add_devices_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``rtsep devices``."""
    p.add_argument("--json", action="store_true", help="print the list as JSON (for scripts)")


def cmd_devices(args: argparse.Namespace) -> int:
    """``rtsep devices``: a table of the audio devices, defaults marked.

    Returns
    -------
    int
        0 (a machine without devices is not an error; it says so).
    """
    devs = list_devices()
    if getattr(args, "json", False):
        print(json.dumps([asdict(d) for d in devs], indent=2))
        return 0
    from . import dashboard

    dashboard.print_devices(devs, rich_output=sys.stdout.isatty())
    return 0


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``rtsep live``."""
    p.add_argument("--input", "-i", metavar="DEV", default=None,
                   help="input device: index or part of the name from `rtsep devices` (default: the default input)")
    p.add_argument("--output-device", "--output", dest="output", metavar="DEV", default=None,
                   help="output device: index or part of the name (default: the default output)")
    # -o names an output folder in every other command; here it once named the device
    p.add_argument("-o", dest="output_o", metavar="DEV", default=None, help=argparse.SUPPRESS)
    p.add_argument("--channels", metavar="A,B", default="1,2",
                   help="input channels used as the microphones, 1-based (default 1,2)")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="sample rate in Hz (default: the input device's default rate)")
    p.add_argument("--block", type=int, default=DEFAULT_BLOCK, metavar="FRAMES",
                   help=f"frames per audio callback (default {DEFAULT_BLOCK}); larger is safer, smaller is faster")
    add_engine_options(p, voice_help="; the s key swaps them live")
    p.add_argument("--play", choices=PLAY_MODES, default="voice",
                   help="what the output plays: voice, background, both (voice left, background right) or none")
    p.add_argument("--record", metavar="DIR", default=None,
                   help="write DIR/input.wav, voice.wav, background.wav and session.json")
    p.add_argument("--latency", default="high", metavar="low|high|SECONDS",
                   help="PortAudio suggested latency (default high: fewest dropouts)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop by itself after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--no-dashboard", action="store_true",
                   help="print plain status lines instead of the live dashboard")


def config_from_args(args: argparse.Namespace) -> LiveConfig:
    """Build a :class:`LiveConfig` from ``rtsep live`` arguments."""
    try:
        channels = tuple(int(c) for c in str(args.channels).replace(" ", "").split(",") if c)
    except ValueError:
        raise ConfigError(f"--channels {args.channels!r}: give 1-based channel numbers like 1,2") from None
    lat: str | float = getattr(args, "latency", "high")
    if isinstance(lat, str) and lat not in ("low", "high"):
        try:
            lat = float(lat)
        except ValueError:
            raise ConfigError(f"--latency {lat!r}: give low, high or a number of seconds") from None
    dur = getattr(args, "duration", None)
    if dur is not None and not (math.isfinite(dur) and dur > 0):
        raise ConfigError(f"--duration {dur}: give a positive number of seconds")
    output = args.output
    if getattr(args, "output_o", None) is not None:
        logging.getLogger("rtsep").warning("-o for the output device is deprecated (elsewhere -o names an output folder): "
                    "use --output-device %s", args.output_o)
        output = args.output if args.output is not None else args.output_o
    return LiveConfig(input=args.input, output=output, channels=channels, rate=args.rate,
                      block=args.block, engine=args.engine, play=args.play,
                      record=Path(args.record) if args.record else None, latency=lat,
                      params=engine_params(args)).validated()


def cmd_live(args: argparse.Namespace) -> int:
    """``rtsep live``: separate the microphones in real time until Ctrl-C or ``--duration``.

    Returns
    -------
    int
        0 after a clean stop (Ctrl-C, SIGTERM or the duration). Problems raise
        :class:`~rtsep.errors.RtsepError` subclasses with one-line messages,
        after the recording has been finished and the summary printed.
    """
    from . import dashboard

    cfg = config_from_args(args)
    duration = getattr(args, "duration", None)
    fancy = sys.stdout.isatty() and not getattr(args, "no_dashboard", False)
    session = LiveSession(cfg, notice=sys.stderr)
    error: BaseException | None = None
    reason = "duration"
    restore = _stop_on_sigterm()
    try:
        session.open()
        print(dashboard.start_line(session), flush=True)
        session.start()
        with dashboard.Display(fancy=fancy) as display, KeyReader() as keys:
            t_end = None if duration is None else time.monotonic() + duration
            while True:
                now = time.monotonic()
                if t_end is not None and now >= t_end:
                    break
                key = keys.read(0.1 if t_end is None else max(0.0, min(0.1, t_end - now)))
                if key in ("s", "S"):
                    session.swap_voice()
                elif key in ("q", "Q"):
                    reason = "q"
                    break
                display.update(session.poll())
    except KeyboardInterrupt:
        reason = "Ctrl-C"
    except RtsepError as exc:
        error, reason = exc, "error"
    finally:
        # A second Ctrl-C must not cut the files short; stopping is bounded anyway.
        old = _ignore_sigint()
        try:
            final = session.stop(reason)
        finally:
            _restore_sigint(old)
            restore()
    # An error before the stream started (no such device…) is just its one line.
    if session.started or reason == "Ctrl-C":
        print(dashboard.summary_line(final), flush=True)
    if error is not None:
        raise error
    return 0


def _stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM stop like Ctrl-C (service managers, `timeout`); returns an undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def _handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _handler)
    return lambda: signal.signal(signal.SIGTERM, old)


def _ignore_sigint() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def _restore_sigint(old: Any) -> None:
    if old is not None:
        signal.signal(signal.SIGINT, old)


def run_live(config: LiveConfig, duration: float, on_update: Callable[[LiveStats], None] | None = None,
             separator: Any = None) -> LiveStats:
    """Run a session for ``duration`` seconds (programmatic use; no printing).

    Parameters
    ----------
    config : LiveConfig
        What to open.
    duration : float
        Seconds to run.
    on_update : callable, optional
        Called with a :class:`LiveStats` about ten times a second.
    separator : object, optional
        A separator to use instead of building one from ``config``.

    Returns
    -------
    LiveStats
        The final snapshot; errors raise after the files were finished.
    """
    session = LiveSession(config, separator=separator)
    try:
        session.start()
        t_end = time.monotonic() + duration
        while time.monotonic() < t_end:
            time.sleep(min(0.1, max(0.0, t_end - time.monotonic())))
            st = session.poll()
            if on_update is not None:
                on_update(st)
    except BaseException:
        session.stop("error")
        raise
    return session.stop("duration")


__all__ = ["LiveConfig", "LiveSession", "LiveStats", "LiveCallbackError", "DeviceInfo", "PLAY_MODES",
           "DEFAULT_BLOCK", "list_devices", "resolve_device", "rescan_devices", "device_error",
           "add_devices_arguments", "cmd_devices", "add_live_arguments", "cmd_live", "config_from_args",
           "run_live"]
