"""Fingerprint rtsep's output samples: one SHA-256 per stream, to prove a refactor changed nothing.

Run it before a change and after it; every line must be the same::

    python tools/hash_outputs.py > before.txt
    ... change ...
    python tools/hash_outputs.py | diff before.txt -

Streams: the shipped talker (``rtsep/data``) over a generated background,
mixed on two virtual mics, through ``Separator`` with engines td and fd at
a few block sizes; the same stream with faults injected (NaN burst, inf,
silence, clipping, a dead and a stuck mic, a 60 dB level jump); a td and fd
stream saved half-way with ``Separator.state()`` (pickled) and resumed with
``Separator.from_state``; and the ``rtsep replay`` and ``rtsep demo``
commands, whose WAV outputs are hashed sample for sample.

It depends on nothing but the public API, numpy and soundfile, so it runs
unchanged on any version of the code that keeps that API.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

import rtsep
from rtsep import Separator

ROOT = Path(rtsep.__file__).resolve().parent


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def mixture(seconds: float | None = None) -> tuple[np.ndarray, int]:
    """The shipped talker over a seeded tone + noise background on two mics.

    Returns
    -------
    x : ndarray, shape (n, 2), float32
        The two mic signals, peak 0.9.
    fs : int
        Sample rate (Hz).
    """
    talk, fs = sf.read(ROOT / "data" / "talker_it.flac", dtype="float32", always_2d=True)
    talk = talk[:, 0].astype(np.float64)
    if seconds is not None:  # loop the clip to the length asked for
        n = int(seconds * fs)
        talk = np.resize(talk, n)
    n = talk.shape[0]
    rng = np.random.default_rng(7)
    t = np.arange(n) / fs
    bg = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.7 * t) + 0.1 * rng.standard_normal(n)
    a = np.array([[1.0, 0.6], [0.45, 1.0]])
    x = np.stack([talk, bg], 1) @ a.T
    return (x * (0.9 / np.abs(x).max())).astype(np.float32), int(fs)


def faulty(x: np.ndarray, fs: int) -> np.ndarray:
    """``x`` with the faults the robustness specs inject (see tests/test_robustness.py)."""
    y = x.copy()
    s = fs // 2
    y[1 * s:1 * s + 200, 0] = np.nan          # NaN burst on one mic
    y[2 * s, 1] = np.inf                      # a single inf
    y[3 * s:4 * s] = 0.0                      # silence on both
    np.clip(y[5 * s:6 * s] * 100, -1, 1, out=y[5 * s:6 * s])  # clipping
    y[7 * s:8 * s, 1] = 0.0                   # dead channel
    y[9 * s:10 * s, 1] = y[9 * s:10 * s, 0]   # a mic copied onto the other
    y[11 * s:12 * s] *= 1000.0                # +60 dB level jump
    y[12 * s:12 * s + 400, 0] = y[12 * s, 0]  # a stuck sample
    return y


def stream(x: np.ndarray, fs: int, engine: str, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Push ``x`` through a fresh separator in blocks of ``block``; (voice, background)."""
    sep = Separator(fs, channels=2, engine=engine)
    out = [sep.process(x[s:s + block]) for s in range(0, x.shape[0], block)]
    return np.concatenate([v for v, _ in out]), np.concatenate([b for _, b in out])


def resumed(x: np.ndarray, fs: int, engine: str, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`stream`, but saved after half the blocks and resumed from the pickled state."""
    sep = Separator(fs, channels=2, engine=engine)
    half = (x.shape[0] // 2) // block * block
    out = [sep.process(x[s:s + block]) for s in range(0, half, block)]
    sep = Separator.from_state(pickle.loads(pickle.dumps(sep.state())))
    out += [sep.process(x[s:s + block]) for s in range(half, x.shape[0], block)]
    return np.concatenate([v for v, _ in out]), np.concatenate([b for _, b in out])


def _wav_digest(folder: Path, names: tuple[str, ...]) -> str:
    arrays = []
    for name in names:
        data, fs = sf.read(folder / name, dtype=None, always_2d=True)
        arrays += [data, np.array([fs])]
    return _digest(*arrays)


def cli(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "rtsep", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-cli", action="store_true", help="skip the replay/demo commands (faster)")
    opts = ap.parse_args(argv)

    x, fs = mixture()
    bad = faulty(x, fs)
    rows = []
    for engine, blocks in (("td", (256, 37, 1024)), ("fd", (256, 100))):
        for block in blocks:
            rows.append((f"{engine} clean block={block}", _digest(*stream(x, fs, engine, block))))
        rows.append((f"{engine} faults block=160", _digest(*stream(bad, fs, engine, 160))))
        rows.append((f"{engine} resumed block=256", _digest(*resumed(x, fs, engine, 256))))
    if not opts.no_cli:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            sf.write(tmp / "in16.wav", x, fs, subtype="PCM_16")
            sf.write(tmp / "bad.wav", np.nan_to_num(bad, posinf=1.0).clip(-1, 1), fs, subtype="FLOAT")
            for engine in ("td", "fd"):
                cli(["replay", str(tmp / "in16.wav"), "--out", str(tmp / f"r{engine}"),
                     "--engine", engine, "--block", "200", "-q"])
                rows.append((f"cli replay {engine} PCM_16 block=200",
                             _wav_digest(tmp / f"r{engine}", ("voice.wav", "background.wav"))))
            cli(["replay", str(tmp / "bad.wav"), "--out", str(tmp / "rbad"), "-q"])  # the default engine: fd
            rows.append(("cli replay fd FLOAT faults", _wav_digest(tmp / "rbad", ("voice.wav", "background.wav"))))
            cli(["demo", "--out", str(tmp / "demo"), "--no-plot", "--background", "noise"])
            rows.append(("cli demo noise td", _wav_digest(tmp / "demo", ("mixture.wav", "voice.wav",
                                                                        "background.wav"))))
    width = max(len(name) for name, _ in rows)
    for name, digest in rows:
        print(f"{name:<{width}}  {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
