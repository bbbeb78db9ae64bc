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
from .plots import StreamSummary, separation_figure
from .separator import Separator
from .material.signals import cafe, mix, mixing_matrix, music_like, pink_noise
from .material.speech import demo_clip
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
    #: share of the 1 s windows with the talker speaking where the voice output is the talker
    voice_share: float = 0.0


#: share of talking windows the voice output must be the talker in for "voice output is the talker: yes"
TALKER_SHARE_YES = 0.9


def talker_share(voice: np.ndarray, talker: np.ndarray, background: np.ndarray, fs: float,
                 window_s: float = 1.0) -> float:
    """Share of 1 s windows in which the voice output is the talker rather than the background.

    Parameters
    ----------
    voice : ndarray, shape (n,)
        The voice output, aligned with the sources.
    talker, background : ndarray, shape (n,)
        Each source as the reference mic hears it.
    fs : float
        Sample rate (Hz).
    window_s : float
        Window length (seconds); windows hop by their length.

    Returns
    -------
    float
        Of the windows where the talker speaks (power within 20 dB of its
        loudest window), the share where the voice output correlates more
        with the talker than with the background; 0.0 if there is none.
    """
    w = int(round(window_s * fs))
    k = voice.shape[0] // w
    if k == 0:
        return 0.0
    v, t, b = (np.asarray(a[:k * w], np.float64).reshape(k, w) for a in (voice, talker, background))
    v, t, b = (a - a.mean(axis=1, keepdims=True) for a in (v, t, b))
    power = (t * t).mean(axis=1)
    talking = power >= 0.01 * power.max()

    def corr2(a: np.ndarray, c: np.ndarray) -> np.ndarray:
        return (a * c).sum(axis=1) ** 2 / ((a * a).sum(axis=1) * (c * c).sum(axis=1) + 1e-30)

    is_talker = corr2(v, t) > corr2(v, b)
    return float(is_talker[talking].mean()) if talking.any() else 0.0


#: what each --background is, as the figure's title says it
BACKGROUND_NAMES = {"music": "generated music", "noise": "pink noise", "cafe": "a cafe of other voices"}


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
        Write ``demo.png`` (see :func:`rtsep.plots.separation_figure`).
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
    summary = StreamSummary(fs) if plot else None
    t0 = time.perf_counter()
    with log_source("demo"):
        for s in range(0, n + lat, block):
            v, b = sep.process(xin[s:s + block])
            voice[s:s + v.shape[0]] = v
            backg[s:s + b.shape[0]] = b
            if summary is not None:
                summary.label((s + v.shape[0] - lat) / fs, sep.info().get("voice"))
    rtf = (time.perf_counter() - t0) / (n / fs)
    voice, backg = voice[lat:], backg[lat:]

    refs = images.T
    est = np.stack([voice, backg])
    imp = improvement(est, refs, x[:, 0])
    h = n // 2
    imp2 = improvement(est[:, h:], refs[:, h:], x[h:, 0])
    share = talker_share(voice, images[:, 0], images[:, 1], fs)

    files = {}
    for name, sig in (("mixture", x.astype(np.float32)), ("voice", voice), ("background", backg)):
        with AtomicWavWriter(out / f"{name}.wav", fs, sig.shape[1] if sig.ndim == 2 else 1) as w:
            w.write(sig)
        files[name] = out / f"{name}.wav"
    if summary is not None:
        t_end, sir_t = sliding_sir_improvement(est, refs, x[:, 0], fs)
        summary.add_input(x)
        summary.add_output(voice, backg)
        title = (f"rtsep demo: real talker + {BACKGROUND_NAMES[background]}, two virtual mics "
                 f"(mixing condition number {cond:g}), engine {engine}")
        files["plot"] = separation_figure(out / "demo.png", summary, title, sir=(t_end, sir_t[0]))
    return DemoResult(float(imp.sdr_improvement[0]), float(imp.sir_improvement[0]),
                      float(imp2.sir_improvement[0]), share >= TALKER_SHARE_YES, rtf, files, share)
