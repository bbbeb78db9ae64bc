"""The live session: one full-duplex PortAudio stream through a separator.

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

import atexit
import gc
import json
import math
import os
import resource
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..config import check_rate
from ..errors import AudioDeviceError, AudioFileError, ConfigError, RtsepError
from .config import LiveConfig
from .devices import (HINT, DeviceInfo, count_stream, device_error, import_sounddevice, plausible_latency,
                      resolve_device, short_error)
from .recorder import Recorder
from .stats import LiveStats

#: How long (s) the stream may go without a callback before the device counts as gone.
STALL_TIMEOUT_S = 2.0
#: The first callback may come late (device start-up, servers rendering in big chunks).
FIRST_CALLBACK_TIMEOUT_S = 5.0
#: Bound on how long stopping a stream may take (s): some drivers hang when their
#: device vanished (PortAudio's JACK host API does when the server died).
STOP_TIMEOUT_S = 2.0


class LiveCallbackError(RtsepError):
    """Processing failed inside the audio callback; the stream was stopped."""

    exit_code = 7


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

    def __init__(self, config: LiveConfig, separator: Any = None, notice: Any = None) -> None:
        self.config = config.validated()
        self._sep = separator
        self._notice = notice
        self._stream: Any = None
        self._sd: Any = None
        self._rec: Recorder | None = None
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
        sd = self._sd = import_sounddevice()
        ind = self.input_device = resolve_device(cfg.input, "input")
        outd = self.output_device = resolve_device(cfg.output, "output") if cfg.play != "none" else None
        what_in = f"input device {ind.name!r} ({ind.hostapi})"
        if ind.max_input_channels < 2:
            raise AudioDeviceError(
                f"{what_in} has {ind.max_input_channels} input channel(s), but separation needs two microphones; "
                f"choose a stereo (2-channel) input with --input; {HINT}")
        sel = np.asarray(cfg.channels, dtype=np.int64) - 1
        if int(sel.max()) >= ind.max_input_channels:
            raise AudioDeviceError(f"--channels {','.join(map(str, cfg.channels))} does not fit {what_in}, which has "
                                   f"{ind.max_input_channels} input channels; {HINT}")
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
                                       f"use --play none; {HINT}")
            if cfg.play == "both" and outd.max_output_channels < 2:
                raise AudioDeviceError(f"--play both needs 2 output channels, {what_out} has 1; use --play voice "
                                       f"or another --output; {HINT}")
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
            from ..separator import Separator
            try:
                self._sep = Separator(fs, channels=mics, engine=cfg.engine, **cfg.params)
            except RtsepError:
                raise  # e.g. --postfilter's package missing: its own message says what to install
            except ImportError as exc:
                raise ConfigError(f"engine {cfg.engine!r} is not available in this installation ({short_error(exc)})") from None
        from ..warm import compile_notice

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
        count_stream(+1)

        lat = self._stream.latency
        lin, lout = (lat, None) if outd is None else lat
        self.device_latency = (plausible_latency(lin), plausible_latency(lout) if outd is not None else None)

        if cfg.record is not None:
            try:
                self._rec = Recorder(Path(cfg.record), int(round(fs)), mics, int(cfg.block))
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
                    f"({type(self._error).__name__}: {short_error(self._error)}); the stream was stopped"
                    + self._kept_note())
                t_fail = self._t_stop or now
            elif self._rec is not None and self._rec.error is not None:
                err = AudioFileError(f"recording to {self._rec.folder} failed after {t_run:.1f} s "
                                     f"({short_error(self._rec.error)}); the files hold what was written before; "
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
                        f"audio server quit?)" + self._kept_note() + f"; {HINT}")
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
        count_stream(-1)

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


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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
