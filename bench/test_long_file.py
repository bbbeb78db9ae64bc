"""A file far longer than one would load whole: ``rtsep replay`` streams it with flat memory.

Run: ``.venv/bin/python -m pytest bench/test_long_file.py -s``. Writes 2-channel
16 kHz FLACs of a short and a long length (generated a few seconds at a time,
so this process stays small too), replays each in a child process
(``rtsep replay IN -o OUT -q --engine E``) and compares the children's peak
RSS: the decoded long file is hundreds of MiB more than the short one, the
peak must stay within a few MiB. The outputs must have the input's frame count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

FS = 16000
CHUNK_S = 10
#: (engine, short minutes, long minutes): fd is ~5× slower than td, so 30 min (still +214 MiB decoded)
LENGTHS = [("td", 2, 60), ("fd", 2, 30)]
#: allowed growth of the child's peak RSS from the short to the long file
MAX_GROWTH_MIB = 20.0
RTSEP = Path(sys.executable).with_name("rtsep")


def _write_flac(path: Path, minutes: int) -> int:
    """A talker-like (gated Laplacian) + uniform-noise instantaneous mixture, streamed to a FLAC."""
    rng = np.random.default_rng(minutes)
    a = np.array([[1.0, 0.6], [0.5, 1.0]])
    total = minutes * 60 * FS
    n = CHUNK_S * FS
    with sf.SoundFile(str(path), "w", samplerate=FS, channels=2, format="FLAC", subtype="PCM_16") as f:
        for start in range(0, total, n):
            m = min(n, total - start)
            t = (start + np.arange(m)) / FS
            gate = np.sin(2 * np.pi * 0.7 * t) > -0.3  # pauses, like speech
            s = np.stack([rng.laplace(size=m) * 0.1 * gate, rng.uniform(-1, 1, m) * 0.1], 1)
            f.write(np.clip(s @ a.T, -1, 1).astype(np.float32))
    return total


def _vm_rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _replay(path: Path, out: Path, engine: str) -> tuple[float, float, list[tuple[float, float]]]:
    """Run ``rtsep replay`` in a child.

    Returns its own peak RSS (MiB), the wall time (s) and its RSS sampled
    every 0.2 s as (seconds since start, MiB).
    """
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(RTSEP), "replay", str(path), "-o", str(out), "-q", "--engine", engine],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    samples: list[tuple[float, float]] = []
    while True:
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all children so far)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        rss = _vm_rss_mib(proc.pid)
        if rss is not None:
            samples.append((time.perf_counter() - t0, rss))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")  # -q: nothing but an error line, never enough to block
    proc.stderr.close()
    assert proc.returncode == 0, f"rtsep replay failed ({proc.returncode}): {err}"
    return usage.ru_maxrss / 1024.0, wall, samples  # ru_maxrss is in KiB on Linux


@pytest.fixture(scope="module")
def rtsep_cli(tmp_path_factory) -> Path:
    if not RTSEP.exists():
        pytest.skip(f"no rtsep command next to {sys.executable} (pip install -e .)")
    # one throw-away replay per engine first: if the numba cache is stale (a kernel was
    # edited) the first child compiles, and compiling alone takes ~100 MiB more at its peak
    tmp = tmp_path_factory.mktemp("warm")
    sf.write(str(tmp / "warm.wav"), np.random.default_rng(0).uniform(-0.1, 0.1, (FS, 2)), FS)
    for engine in {e for e, _, _ in LENGTHS}:
        _replay(tmp / "warm.wav", tmp / f"out_{engine}", engine)
    return RTSEP


@pytest.mark.parametrize("engine, short_min, long_min", LENGTHS, ids=[e for e, _, _ in LENGTHS])
def test_replaying_a_long_file_keeps_peak_memory_flat(tmp_path, rtsep_cli, engine, short_min, long_min):
    rows = []
    for minutes in (short_min, long_min):
        path = tmp_path / f"in_{minutes}min.flac"
        t0 = time.perf_counter()
        frames = _write_flac(path, minutes)
        t_write = time.perf_counter() - t0
        assert sf.info(str(path)).frames == frames
        out = tmp_path / f"out_{minutes}min"
        peak, wall, samples = _replay(path, out, engine)
        for name in ("voice.wav", "background.wav"):
            info = sf.info(str(out / name))
            assert info.frames == frames and info.samplerate == FS and info.channels == 1, name
        timing = json.loads((out / "timing.json").read_text())
        assert timing["frames"] == frames
        decoded_mib = frames * 2 * 4 / 2**20  # the whole input as float32, had it been loaded
        rows.append(dict(minutes=minutes, peak=peak, wall=wall, t_write=t_write, decoded=decoded_mib,
                         size=path.stat().st_size / 2**20, rtf=timing["rtf"], samples=samples))
        # free the disk before the next length (the 60 min outputs are ~440 MiB)
        for p in (path, out / "voice.wav", out / "background.wav"):
            p.unlink()
    for r in rows:
        print(f"{engine} {r['minutes']:3d} min: child peak RSS {r['peak']:7.1f} MiB, replay {r['wall']:6.1f} s "
              f"(RTF {r['rtf']:.4f}), FLAC {r['size']:6.1f} MiB written in {r['t_write']:5.1f} s, "
              f"decoded size {r['decoded']:7.1f} MiB")
    short, long = rows
    growth = long["peak"] - short["peak"]
    decoded_growth = long["decoded"] - short["decoded"]
    print(f"{engine}: peak RSS grew {growth:+.1f} MiB while the decoded input grew {decoded_growth:.0f} MiB")
    # within the long run: RSS once streaming (a quarter of the way) vs the most it ever reached
    t_end = long["samples"][-1][0]
    settled = max(rss for t, rss in long["samples"] if t <= t_end / 4)
    late = max(rss for t, rss in long["samples"] if t >= t_end / 4)
    print(f"{engine} {long['minutes']} min: RSS {settled:.1f} MiB at a quarter of the run, "
          f"at most {late:.1f} MiB afterwards ({len(long['samples'])} samples)")
    assert decoded_growth > 200
    assert growth < MAX_GROWTH_MIB
    assert late - settled < MAX_GROWTH_MIB / 2
