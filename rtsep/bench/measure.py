"""What is measured: BSS-Eval scores and convergence, latency, per-block time, cold start."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .mixtures import FS, Mixture
from .peers import Run, STREAM_BLOCK

#: Sliding-window SIR improvement (dB) that counts as converged.
CONVERGED_DB = {"inst": 20.0, "room": 10.0}


def _best_assignment(est: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Permutation of the outputs with the best SIR (the BSS-Eval convention)."""
    import fast_bss_eval

    _sdr, _sir, _sar, perm = fast_bss_eval.bss_eval_sources(refs, est, compute_permutation=True)
    return np.asarray(perm)


def measure_latency(engine: str, fs: int = FS) -> int:
    """Delay (samples) of an impulse through a fresh Separator: where ``voice + background`` peaks.

    ``voice + background`` is the reference mic delayed by the engine, so its
    peak sits at the impulse position plus the algorithmic latency.
    """
    from rtsep import Separator

    sep = Separator(fs, engine=engine)
    n = fs
    k = fs // 2
    x = np.random.default_rng(0).standard_normal((n, 2)) * 1e-4  # a floor, so no engine sees digital silence
    x[k] += (0.5, 0.3)
    out = [sum(sep.process(x[s:s + STREAM_BLOCK])) for s in range(0, n, STREAM_BLOCK)]
    return int(np.argmax(np.abs(np.concatenate(out)))) - k


@dataclass
class Score:
    """One method on one mixture (dB, s); ``status`` is "ok", "not installed" or an error."""

    method: str
    mixture: str
    status: str = "ok"
    sdr_imp_voice: float = math.nan
    sir_imp_voice: float = math.nan
    sir_imp_bg: float = math.nan
    sir_imp_voice_2nd_half: float = math.nan
    t_converge_s: float | None = None
    rtf: float = math.nan
    latency_s: float = math.nan
    voice_is_talker: bool | None = None
    sliding: dict[str, list[float]] = field(default_factory=dict)


def score(name: str, m: Mixture, run: Run, sliding: bool) -> Score:
    """BSS-Eval the run; for rtsep keep its own voice label, for peers take the best-SIR assignment."""
    from rtsep.metrics import improvement, sliding_sir_improvement, time_to_reach

    n = m.x.shape[0]
    est = run.est
    perm = _best_assignment(est, m.images)
    voice_ok = None
    if run.labelled:
        voice_ok = bool(perm[0] == 0)
    else:
        est = est[perm]
    imp = improvement(est, m.images, m.x[:, 0])
    h = n // 2
    imp2 = improvement(est[:, h:], m.images[:, h:], m.x[h:, 0])
    sc = Score(name, m.name, sdr_imp_voice=float(imp.sdr_improvement[0]), sir_imp_voice=float(imp.sir_improvement[0]),
               sir_imp_bg=float(imp.sir_improvement[1]), sir_imp_voice_2nd_half=float(imp2.sir_improvement[0]),
               rtf=run.seconds / m.seconds, latency_s=run.latency_samples / m.fs, voice_is_talker=voice_ok)
    sc.t_converge_s = 0.0  # a batch method's output already uses the whole file
    if run.online or sliding:
        t, s = sliding_sir_improvement(est, m.images, m.x[:, 0], m.fs, window_s=1.0, hop_s=0.25)
        sc.sliding = {"t_end": t.tolist(), "sir_imp_voice": s[0].tolist()}
        if run.online:
            # converged: from then on the voice output stays above the threshold (both outputs
            # would punish rtsep for a background that is itself speech-like in babble)
            sc.t_converge_s = time_to_reach(t, s[0], CONVERGED_DB[m.kind])
    return sc


def _time_blocks(engine: str, fs: int, block: int, channels: int, blocks_n: int) -> dict[str, Any]:
    from rtsep import Separator

    rng = np.random.default_rng(0)
    x = rng.standard_normal((block * blocks_n + fs, channels)) * 0.1
    x[:, 1:] += 0.5 * x[:, :1]
    try:
        sep = Separator(fs, channels=channels, engine=engine).warmup()
    except Exception as e:  # an engine that cannot run here must not lose the other rows
        return dict(engine=engine, fs=fs, block=block, channels=channels, error=f"{type(e).__name__}: {e}")
    sep.process(x[:fs])  # the steady state is what a live stream sees
    ts = np.empty(blocks_n)
    for i in range(blocks_n):
        s = fs + i * block
        t0 = time.perf_counter()
        sep.process(x[s:s + block])
        ts[i] = time.perf_counter() - t0
    dur = block / fs
    return dict(engine=engine, fs=fs, block=block, channels=channels, block_ms=1e3 * dur,
                p50_ms=1e3 * float(np.percentile(ts, 50)), p99_ms=1e3 * float(np.percentile(ts, 99)),
                max_ms=1e3 * float(ts.max()), rtf=float(ts.sum() / (blocks_n * dur)))


def td_speed(quick: bool) -> list[dict[str, Any]]:
    """Per-block time of each engine over block sizes, sample rates and mic counts (one core).

    td: blocks 32 … 4096 at 16 and 48 kHz with 2 mics, and 2/4/8 mics at
    16 kHz, block 256 (PCA keeps the top 2 components). fd: blocks 256 …
    4096 at 16 kHz.

    Returns
    -------
    list of dict
        ``engine``, ``fs`` (Hz), ``block`` (samples), ``channels``, ``p50_ms``,
        ``p99_ms``, ``max_ms``, ``block_ms`` and ``rtf`` (total time / audio time).
    """
    audio_s = 4.0 if quick else 20.0
    rows = []
    blocks = (32, 64, 256, 1024, 4096) if quick else (32, 64, 128, 256, 512, 1024, 2048, 4096)
    for fs in (16000, 48000):
        for block in blocks:
            rows.append(_time_blocks("td", fs, block, 2, max(50, int(audio_s * fs / block))))
    for ch in (4, 8):
        rows.append(_time_blocks("td", 16000, 256, ch, int(audio_s * 16000 / 256)))
    for block in ((256, 1024) if quick else (256, 1024, 4096)):
        rows.append(_time_blocks("fd", 16000, block, 2, max(20, int(audio_s * 16000 / block))))
    return rows


def cold_start() -> list[dict[str, Any]]:
    """Seconds from a fresh interpreter to a warmed-up Separator, with and without Numba's disk cache.

    Each row is a separate ``python -c`` process: ``import rtsep`` then
    ``Separator(...).warmup()``; "no cache" points ``NUMBA_CACHE_DIR`` at an
    empty folder, "cache" runs the same command a second time on that folder.
    """
    import subprocess
    import sys
    import tempfile

    rows = []
    code = ("import time; t=time.perf_counter(); import rtsep; "
            "rtsep.Separator(16000, engine='{e}').warmup(); print(time.perf_counter()-t)")
    for engine in ("td", "fd"):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for label in ("no cache (JIT compile)", "cache (second start)"):
                try:
                    out = subprocess.run([sys.executable, "-c", code.format(e=engine)], env=env,
                                         capture_output=True, text=True, timeout=600, check=True)
                    rows.append(dict(engine=engine, case=label, seconds=float(out.stdout.strip().splitlines()[-1])))
                except (subprocess.SubprocessError, ValueError, IndexError) as e:
                    rows.append(dict(engine=engine, case=label, seconds=float("nan"), error=str(e)[:80]))
    return rows
