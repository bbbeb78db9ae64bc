"""``rtsep demo``: a real talker over generated music, separated and scored.

Needs no microphone and no download: the talker is the short clip shipped
in ``rtsep/data`` (see ``LICENSE-audio.txt``), the background is generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .errors import ConfigError
from .events import log_source
from .io_files import AtomicWavWriter, prepare_out_dir
from .metrics import improvement, sliding_sir_improvement
from .separator import Separator
from .signals import cafe, mix, mixing_matrix, music_like, pink_noise
from .speech import demo_clip
from .warm import compile_notice


@dataclass
class DemoResult:
    """Scores (dB) and files of one demo run."""

    sdr_improvement: float
    sir_improvement: float
    sir_improvement_second_half: float
    voice_is_talker: bool
    rtf: float
    files: dict[str, Path]


def _background(kind: str, n: int, fs: int, seed: int) -> np.ndarray:
    if kind == "music":
        return music_like(n, fs, seed)
    if kind == "noise":
        return pink_noise(n, seed)
    return cafe(n, fs, seed)


def run_demo(out_dir: str | Path, background: str = "music", cond: float = 5.0, seed: int = 1,
             block: int = 256, engine: str = "td", plot: bool = True,
             params: dict[str, Any] | None = None, notice: TextIO | None = None) -> DemoResult:
    """Mix the shipped talker with a background on two virtual mics and separate it.

    Parameters
    ----------
    out_dir : path
        Where ``mixture.wav``, ``voice.wav``, ``background.wav`` and
        ``demo.png`` go.
    background : {"music", "noise", "cafe"}
        Generated interferer ("cafe" needs the real-speech packages).
    cond : float
        Condition number of the random 2×2 mixing matrix.
    seed : int
        Seed of the mixing matrix and background.
    block : int
        Streaming block length (samples).
    engine : {"td", "fd"}
        Engine.
    plot : bool
        Write ``demo.png`` (waveforms and SIR improvement over time).
    params : dict, optional
        Engine parameters.
    notice : text stream, optional
        Where to say that the kernels are being compiled, if they are.
    """
    import time

    if not cond > 1:
        # cond 1 is the identity: each mic hears one source, the improvement over it is -inf dB
        raise ConfigError(f"--cond {cond:g}: the mixing must have a condition number above 1 (at 1 each mic "
                          "hears only one source, so there is nothing to separate); try --cond 1.5")
    out = prepare_out_dir(out_dir)
    talk, fs = demo_clip()
    n = talk.shape[0]
    bg = _background(background, n, fs, seed)
    a = mixing_matrix(cond, seed)
    sources = np.stack([talk.astype(np.float64), bg.astype(np.float64)], axis=1)
    x = mix(sources, a)
    peak = np.abs(x).max()
    if peak > 0.9:  # keep the virtual mics out of clipping
        x, sources = x * (0.9 / peak), sources * (0.9 / peak)
    images = sources * a[0][None, :]  # each source as mic 1 hears it

    sep = Separator(fs, channels=2, engine=engine, **(params or {}))
    with compile_notice(engine, notice):
        sep.warmup()
    lat = sep.latency_samples
    voice = np.empty(n + lat, np.float32)
    backg = np.empty(n + lat, np.float32)
    xin = np.concatenate([x, np.zeros((lat, 2))]).astype(np.float32)
    t0 = time.perf_counter()
    with log_source("demo"):
        for s in range(0, n + lat, block):
            v, b = sep.process(xin[s:s + block])
            voice[s:s + v.shape[0]] = v
            backg[s:s + b.shape[0]] = b
    rtf = (time.perf_counter() - t0) / (n / fs)
    voice, backg = voice[lat:], backg[lat:]

    refs = images.T
    est = np.stack([voice, backg])
    imp = improvement(est, refs, x[:, 0])
    h = n // 2
    imp2 = improvement(est[:, h:], refs[:, h:], x[h:, 0])
    swapped = improvement(est[::-1, h:], refs[:, h:], x[h:, 0])
    voice_is_talker = bool(imp2.sir.mean() > swapped.sir.mean())

    files = {}
    for name, sig in (("mixture", x.astype(np.float32)), ("voice", voice), ("background", backg)):
        with AtomicWavWriter(out / f"{name}.wav", fs, sig.shape[1] if sig.ndim == 2 else 1) as w:
            w.write(sig)
        files[name] = out / f"{name}.wav"
    if plot:
        t_end, sir_t = sliding_sir_improvement(est, refs, x[:, 0], fs)
        files["plot"] = _plot(out / "demo.png", fs, x, voice, backg, t_end, sir_t[0])
    return DemoResult(float(imp.sdr_improvement[0]), float(imp.sir_improvement[0]),
                      float(imp2.sir_improvement[0]), voice_is_talker, rtf, files)


def _plot(path: Path, fs: int, x: np.ndarray, voice: np.ndarray, backg: np.ndarray,
          t_end: np.ndarray, sir_t: np.ndarray) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(x.shape[0]) / fs
    fig, ax = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
    ax[0].plot(t, x[:, 0], lw=0.4, color="0.3")
    ax[0].set_ylabel("mic 1")
    ax[1].plot(t, voice, lw=0.4, color="tab:blue")
    ax[1].set_ylabel("voice")
    ax[2].plot(t, backg, lw=0.4, color="tab:orange")
    ax[2].set_ylabel("background")
    ax[3].plot(t_end, sir_t, marker=".", color="tab:green")
    ax[3].axhline(20, color="0.6", ls="--", lw=0.8)
    ax[3].set_ylabel("voice SIR\nimprovement (dB)")
    ax[3].set_xlabel("time (s) — 1 s windows, plotted at their end")
    fig.suptitle("rtsep demo: real talker + generated background, two virtual mics")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.part.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
