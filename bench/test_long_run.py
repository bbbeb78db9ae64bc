"""An hour of audio through ``Separator.process``: memory flat, no drift, no slow degradation.

Run: ``.venv/bin/python -m pytest bench/test_long_run.py -s``. Prints RSS at the
start and end, the voice/background level and SIR per 10-minute stretch.
"""

from __future__ import annotations

import resource

import numpy as np
import pytest

from rtsep import Separator

FS = 16000
BLOCK = 1024
MINUTES = 60


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _chunk(rng: np.random.Generator, n: int, t0: int) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like (gated Laplacian) voice and uniform background, 1 s at a time."""
    t = (t0 + np.arange(n)) / FS
    gate = (np.sin(2 * np.pi * 0.7 * t) > -0.3).astype(float)  # pauses, like speech
    v = rng.laplace(size=n) * 0.1 * gate
    b = rng.uniform(-1, 1, n) * 0.1
    return v, b


@pytest.mark.parametrize("engine", ["td"])
def test_one_hour_stream_keeps_memory_flat_and_separation_steady(engine):
    rng = np.random.default_rng(0)
    a = np.array([[1.0, 0.6], [0.5, 1.0]])
    sep = Separator(FS, engine=engine).warmup()
    rss0 = None
    stretch = 10 * 60 * FS
    acc = {"sig": 0.0, "err": 0.0, "pow": 0.0, "n": 0}
    rows = []
    pos = 0
    total = MINUTES * 60 * FS
    while pos < total:
        v, b = _chunk(rng, FS, pos)
        x = np.stack([v, b], 1) @ a.T
        for s in range(0, FS, BLOCK):
            out_v, _ = sep.process(x[s:s + BLOCK].astype(np.float32))
            ref = v[s:s + BLOCK] * a[0, 0]
            acc["sig"] += float(np.sum(ref ** 2))
            acc["err"] += float(np.sum((out_v - ref) ** 2))
            acc["pow"] += float(np.sum(out_v.astype(np.float64) ** 2))
            acc["n"] += out_v.shape[0]
        pos += FS
        if rss0 is None and pos >= 60 * FS:
            rss0 = _rss_mib()  # after the first minute: allocator warmed up
        if pos % stretch == 0:
            rows.append((pos // (60 * FS), 10 * np.log10(acc["sig"] / acc["err"]),
                         10 * np.log10(acc["pow"] / acc["n"]), _rss_mib()))
            acc = {"sig": 0.0, "err": 0.0, "pow": 0.0, "n": 0}
    for minute, sdr, level, rss in rows:
        print(f"minute {minute:3d}: voice SDR {sdr:5.1f} dB, voice level {level:6.2f} dBFS, RSS {rss:6.1f} MiB")
    sdrs = [r[1] for r in rows]
    levels = [r[2] for r in rows]
    assert rows[-1][3] - rss0 < 5.0          # memory flat (MiB)
    assert max(levels) - min(levels) < 0.5   # no drift in output level (dB)
    assert min(sdrs) > max(sdrs) - 2.0       # no slow degradation (dB)
