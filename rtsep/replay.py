"""Replay: a file streamed block by block through the live code path."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from .errors import BadAudioError
from .events import log_source
from .io_files import AlignedOutputWriter, AudioReader, check_subtype, output_subtype, prepare_out_dir
from .plots import StreamSummary, separation_figure
from .separator import Separator
from .warm import compile_notice


@dataclass
class ReplayResult:
    """What a replay did.

    Attributes
    ----------
    outputs : dict of str to Path
        ``voice``, ``background`` WAVs (or one stereo ``separated`` WAV),
        ``timing`` JSON and, with ``plot``, the ``plot`` PNG.
    timing : dict
        Contents of ``timing.json``: ``processing_s`` (seconds inside
        ``Separator.process``), ``audio_s``, ``rtf`` (processing / audio),
        ``latency_samples`` and more.
    """

    outputs: dict[str, Path]
    timing: dict[str, Any] = field(default_factory=dict)


def replay(path: str | os.PathLike, out_dir: str | os.PathLike, engine: str = "td",
           block: int = 256, channels: Sequence[int] | None = None,
           params: dict[str, Any] | None = None,
           progress: Callable[[int, int], None] | None = None,
           subtype: str | None = None, stereo: bool = False,
           notice: TextIO | None = None, plot: bool = False) -> ReplayResult:
    """Separate a recording by streaming it through :meth:`Separator.process`.

    Parameters
    ----------
    path : path
        Input recording (≥ 2 channels, 8–96 kHz, any libsndfile format);
        ``"-"`` reads WAV or FLAC from the standard input, streamed.
    out_dir : path
        Folder for ``voice.wav``, ``background.wav`` and ``timing.json``.
    engine : {"td", "fd"}
        Separation engine.
    block : int
        Block length (samples), as a sound card would deliver it.
    channels : sequence of int, optional
        1-based channels to use from a multichannel file.
    params : dict, optional
        Engine parameters.
    progress : callable, optional
        Called as ``progress(done_frames, total_frames)`` after each block
        (not for the standard input, whose length is unknown).
    subtype : str, optional
        Sample format of the outputs (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``…);
        default: the input's own (see :func:`rtsep.io_files.output_subtype`).
        Integer formats clip what exceeds full scale (counted in
        ``timing["clipped_output_samples"]``).
    stereo : bool
        One two-channel ``separated.wav`` (voice left, background right)
        instead of ``voice.wav`` and ``background.wav``.
    notice : text stream, optional
        Where to say that the kernels are being compiled, if they are (the
        first run on a machine); None says nothing.
    plot : bool
        Also write ``replay.png``: waveforms, spectrograms of mic 1 and of
        the voice, and which output is the voice over time (see
        :func:`rtsep.plots.separation_figure`; bounded memory at any length).

    Returns
    -------
    ReplayResult

    Notes
    -----
    The outputs have the input's rate and length and are aligned with it:
    the engine latency is trimmed from the start and flushed at the end.
    They are written under temporary names and renamed when complete, so
    they are valid even if the input turns out damaged half-way. Input with
    NaN/Inf samples or only zeros is still processed (NaN → 0), then reported
    with :class:`BadAudioError`.
    """
    subtype = check_subtype(subtype) if subtype else None
    with AudioReader(path, channels) as reader:
        out = prepare_out_dir(out_dir)
        subtype = subtype or output_subtype(reader.subtype)
        if reader.streamed:
            progress = None
        sep = Separator(reader.fs, channels=reader.channels, engine=engine, **(params or {}))
        with compile_notice(engine, notice):
            sep.warmup()
        lat = sep.latency_samples
        processing = 0.0
        wall0 = time.perf_counter()
        summary = StreamSummary(reader.fs) if plot else None
        with AlignedOutputWriter(out, reader.fs, lat, subtype=subtype, stereo=stereo,
                                 tap=summary.add_output if summary else None) as writer, \
                log_source(reader.path.name):
            emit = writer.write
            done = 0
            for blk in reader.blocks(block):
                t0 = time.perf_counter()
                v, b = sep.process(blk)
                processing += time.perf_counter() - t0
                emit(v, b)
                done += blk.shape[0]
                if summary is not None:
                    summary.add_input(blk)
                    summary.label(max(done - lat, 0) / reader.fs, sep.info().get("voice"))
                if progress is not None:
                    progress(done, reader.frames)
            if lat:
                v, b = sep.process(np.zeros((lat, reader.channels), dtype=np.float32))
                emit(v, b)
        wall = time.perf_counter() - wall0
        audio_s = done / reader.fs  # the input's length; the latency flush is not audio
        info = sep.info()
        timing = {
            "processing_s": processing,
            "audio_s": audio_s,
            "rtf": processing / audio_s if audio_s else 0.0,
            "wall_s": wall,
            "latency_samples": lat,
            "latency_s": lat / reader.fs,
            "aligned": True,
            "engine": engine,
            "block": block,
            "fs": reader.fs,
            "frames": int(done),
            "voice_output": info.get("voice"),
            "nonfinite_samples": sep.stats.nonfinite,
            "clipped_samples": sep.stats.clipped,
            "guard_events": sep.events,
            "input": str(reader.path),
            "input_format": reader.format_info,
            "output_subtype": subtype,
            "clipped_output_samples": writer.clipped,
            "outputs": {k: v.name for k, v in writer.paths.items()},
        }
        outputs = dict(writer.paths)
        if summary is not None:
            title = f"rtsep replay: {reader.path.name} ({reader.fs} Hz), engine {engine}"
            outputs["plot"] = separation_figure(out / "replay.png", summary, title)
            timing["outputs"]["plot"] = "replay.png"
        timing_path = out / "timing.json"
        tmp = timing_path.with_name(".timing.json.part")
        tmp.write_text(json.dumps(timing, indent=2) + "\n")
        os.replace(tmp, timing_path)
    result = ReplayResult({**outputs, "timing": timing_path}, timing)
    name = reader.path.name
    if sep.stats.nonfinite:
        t_bad = sep.stats.first_nonfinite / reader.fs
        raise BadAudioError(f"{name} contains {sep.stats.nonfinite} NaN/Inf sample values (first at "
                            f"{t_bad:.3f} s); they were replaced by silence in {out}/voice.wav and "
                            "background.wav; repair or re-export the recording")
    if sep.stats.peak == 0.0:
        raise BadAudioError(f"{name} is silent (every sample is zero), so there is nothing to separate; "
                            "check the microphones are connected and their level is up")
    return result


def clipping_warning(result: ReplayResult) -> str | None:
    """A one-line warning if many input samples were clipped, else None."""
    n = result.timing.get("clipped_samples", 0)
    frames = max(1, result.timing.get("frames", 1))
    if n and n / frames > 1e-4:
        return (f"warning: {n} input samples are at full scale (clipping); separation degrades on "
                "clipped audio: lower the recording gain")
    return None


def output_clipping_warning(result: ReplayResult) -> str | None:
    """A one-line warning if outputs had to be clipped to fit an integer sample format, else None."""
    n = result.timing.get("clipped_output_samples", 0)
    if n:
        return (f"warning: {n} output samples exceeded full scale and were clipped to fit "
                f"{result.timing.get('output_subtype')}; --subtype FLOAT keeps them")
    return None


def stderr_is_tty() -> bool:
    """Whether progress bars can be drawn."""
    return sys.stderr.isatty()
