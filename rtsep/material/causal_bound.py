"""The causal bound for the fd engine: frozen demixers, and batch AuxIVA fitted on the past only.

An online separator at time t has seen [0, t]. Batch AuxIVA (pyroomacoustics,
time-varying Gaussian model, many iterations from the identity) fitted on the
same frames is what that past allows for this source model; the fd engine's
demixers taken at t and batch AuxIVA's, each applied frozen to what follows t,
compare the two without the voice label or the demixers' later changes in the
way. Used by ``bench/fd_bound.py`` (the dev rooms) and the room specs.

Benchmark and test material: needs pyroomacoustics (a test extra) for the
batch fit; nothing in the runtime imports this module.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import numpy as np
from scipy.signal import ShortTimeFFT
from scipy.signal.windows import hann

from ..engines.fd import FrequencyDomainEngine
from ..metrics import improvement
from .rooms import import_pyroomacoustics


def _stft(fs: float, frame: int, hop: int) -> ShortTimeFFT:
    return ShortTimeFFT(hann(frame, sym=False), hop, fs)


def mix_spectra(mix: np.ndarray, fs: float, frame: int = 1024, hop: int | None = None) -> np.ndarray:
    """The mics' STFT (periodic Hann) in pyroomacoustics' layout, for its batch separators.

    Parameters
    ----------
    mix : ndarray, shape (n, M)
        Microphone samples.
    fs : float
        Sample rate (Hz).
    frame, hop : int
        STFT frame and advance (samples; ``hop`` defaults to ``frame // 4``).

    Returns
    -------
    ndarray, shape (frames, frame // 2 + 1, M), complex
    """
    return _stft(fs, frame, hop or frame // 4).stft(mix.T).transpose(2, 1, 0)


def frozen_images(mix: np.ndarray, w: np.ndarray, fs: float, k_lo: int, hop: int | None = None,
                  max_gain_db: float = 40.0) -> np.ndarray:
    """Images at mic 1 of the two outputs of demixers held fixed over the whole signal.

    Parameters
    ----------
    mix : ndarray, shape (n, 2)
        The two microphones.
    w : ndarray, shape (frame // 2 + 1, 2, 2), complex
        Demixers in rtsep's convention (:mod:`rtsep.kernels.iva`): output
        ``y_q = sum_m conj(w[k, q, m]) x_m``; the frame length follows from the bins.
    fs : float
        Sample rate (Hz).
    k_lo : int
        Bins below this go wholly to output 2 (the background), as in the engine.
    hop : int, optional
        STFT hop (samples); a quarter of the frame by default.
    max_gain_db : float
        Cap on a bin's gain from the mics to an image, the engine's
        ``max_gain_db``: an ill-conditioned bin would give two huge images that cancel.

    Returns
    -------
    ndarray, shape (2, n)
        The two outputs' images at mic 1, projected back (they sum to mic 1).
    """
    frame = 2 * (w.shape[0] - 1)
    s = _stft(fs, frame, hop or frame // 4)
    x = s.stft(mix.T)                                   # (mic, bin, frame)
    d = np.conj(w)                                      # y = D x
    det = d[:, 0, 0] * d[:, 1, 1] - d[:, 0, 1] * d[:, 1, 0]
    ok = np.abs(det) > 1e-150
    c = np.where(ok, d[:, 1, 1] / np.where(ok, det, 1.0), 0.0)
    g2 = np.abs(c) ** 2 * (np.abs(d[:, 0, 0]) ** 2 + np.abs(d[:, 0, 1]) ** 2)
    cap = 10.0 ** (max_gain_db / 20.0)
    c = c * np.sqrt(np.minimum(1.0, cap * cap / np.maximum(g2, 1e-300)))
    im0 = c[:, None] * (d[:, 0, 0, None] * x[0] + d[:, 0, 1, None] * x[1])
    im0[:k_lo] = 0.0
    y0 = s.istft(im0, k1=mix.shape[0])
    return np.stack([y0, mix[:, 0] - y0])


def batch_auxiva(mix: np.ndarray, fs: float, seconds: float | None, frame: int = 1024, hop: int | None = None,
                 n_iter: int = 100) -> np.ndarray:
    """Batch AuxIVA demixers (pyroomacoustics, Gaussian model) fitted on [0, seconds] only.

    Parameters
    ----------
    mix : ndarray, shape (n, 2)
        The two microphones.
    fs : float
        Sample rate (Hz).
    seconds : float or None
        Fit on the STFT frames that end before this time (s); None: the whole signal.
    frame, hop : int
        STFT frame and hop (samples); hop a quarter of the frame by default.
    n_iter : int
        Iterations from the identity.

    Returns
    -------
    ndarray, shape (frame // 2 + 1, 2, 2), complex
        Demixers in rtsep's convention (see :func:`frozen_images`); bins the
        fit leaves singular stay unseparated (identity).
    """
    pra = import_pyroomacoustics()
    hop = hop or frame // 4
    x = mix_spectra(mix, fs, frame, hop)
    if seconds is not None:
        x = x[: int(round(seconds * fs / hop))]
    _, wp = pra.bss.auxiva(x, n_iter=n_iter, proj_back=False, model="gauss", return_filters=True)
    bad = ~np.all(np.isfinite(wp), axis=(1, 2))
    wp[bad] = np.eye(2)
    wp[np.abs(np.linalg.det(wp)) < 1e-12] = np.eye(2)
    return np.conj(wp)                                  # pyroomacoustics: y = W x


class CausalBatch(NamedTuple):
    """What :func:`causal_batch_stream` returns."""

    outputs: np.ndarray               # (2, n): the piecewise stream, output order fixed by the images
    demixers: dict[float, np.ndarray]  # refit time (s) -> batch AuxIVA demixers fitted on [0, t]


def causal_batch_stream(mix: np.ndarray, images: np.ndarray, fs: float, times: tuple[float, ...],
                        k_lo: int, frame: int = 1024, n_iter: int = 100) -> CausalBatch:
    """An oracle causal separator: batch AuxIVA refitted on [0, t_i], applied on [t_i, t_i+1).

    What a causal separator with this source model could at best stream if it
    could afford a 100-iteration batch fit on its whole past at each ``t_i``:
    before ``times[0]`` mic 1 passes through as output 1 (the fd engine's
    start); each segment's output order is the one that matches ``images``
    (an oracle: a refit from the identity may come out the other way round).
    The last time's fit is also made on the whole signal when ``times[-1]``
    reaches its end.

    Parameters
    ----------
    mix : ndarray, shape (n, 2)
        The two microphones.
    images : ndarray, shape (2, n)
        The true images at mic 1 (voice, background), for the output order only.
    fs : float
        Sample rate (Hz).
    times : tuple of float
        Refit times (s), increasing.
    k_lo : int
        Bins below this go wholly to output 2, as in the engine.
    frame : int
        STFT frame (samples); hop a quarter of it.
    n_iter : int
        Iterations of each fit, from the identity.
    """
    n = mix.shape[0]
    out = np.zeros((2, n))
    first = min(n, int(round(times[0] * fs)))
    out[0, :first] = mix[:first, 0]
    fits: dict[float, np.ndarray] = {}
    for i, t in enumerate(times):
        w = batch_auxiva(mix, fs, t if t * fs < n else None, frame, None, n_iter)
        fits[t] = w
        a = min(n, int(round(t * fs)))
        b = n if i + 1 == len(times) else min(n, int(round(times[i + 1] * fs)))
        if b <= a:
            continue
        seg = frozen_images(mix, w, fs, k_lo)[:, a:b]
        ref = images[:, a:b]
        kept = abs(seg[0] @ ref[0]) + abs(seg[1] @ ref[1])
        crossed = abs(seg[1] @ ref[0]) + abs(seg[0] @ ref[1])
        out[:, a:b] = seg if kept >= crossed else seg[::-1]
    return CausalBatch(out, fits)


def sdr_improvement(outputs: np.ndarray, images: np.ndarray, mic0: np.ndarray, fs: float,
                    start_s: float = 0.0) -> float:
    """Mean BSS-Eval SDR improvement (dB) of two outputs over mic 1 on [start_s, end], best order.

    Parameters
    ----------
    outputs, images : ndarray, shape (2, n)
        The separated signals and the true images at mic 1 (voice, background).
    mic0 : ndarray, shape (n,)
        Mic 1, the unprocessed baseline.
    fs : float
        Sample rate (Hz).
    start_s : float
        Score from this time (s).
    """
    a = int(round(start_s * fs))
    best = -math.inf
    for order in ((0, 1), (1, 0)):
        imp = improvement(outputs[list(order), a:], images[:, a:], mic0[a:])
        best = max(best, float(np.mean(imp.sdr_improvement)))
    return best


class Snapshots(NamedTuple):
    """What :func:`stream_with_snapshots` returns."""

    demixers: dict[float, np.ndarray]  # t (s) -> copy of the engine's w once the frame ending at t was learnt
    outputs: np.ndarray                # (2, n): the stream's own outputs, latency removed
    k_lo: int                          # first separated bin
    seconds: float                     # wall time of the stream alone (s), snapshots excluded
    info: dict[str, Any]               # the engine's info() at the end


def stream_with_snapshots(mix: np.ndarray, fs: float, times: tuple[float, ...], block: int = 256,
                          **params: Any) -> Snapshots:
    """Stream ``mix`` (n, 2) through the fd engine in blocks; copies of its demixers at ``times`` (s).

    The output order is pinned (``voice=0``) and the post-filter is off
    (``suppress_db=0``) unless ``params`` say otherwise: the demixers are
    under test here, not the voice label nor the post-filter. Blocks are cut at
    each time in ``times``; the output does not depend on it (block-size
    invariance).
    """
    eng = FrequencyDomainEngine(fs, 2, **{"voice": 0, "suppress_db": 0.0, **params})
    eng.warmup()
    lat = eng.latency_samples
    x = np.concatenate([mix, np.zeros((lat, 2))])
    marks = sorted(round(t * fs) for t in times)
    snaps: dict[float, np.ndarray] = {}
    outs = []
    wall = 0.0
    i = 0
    for m in [*marks, x.shape[0]]:
        while i < m:
            j = min(m, i + block)
            t0 = time.perf_counter()
            outs.append(eng.process(x[i:j]))
            wall += time.perf_counter() - t0
            i = j
        if m in marks:
            snaps[m / fs] = eng.w_out.copy()  # the demixers the audio went through
    out = np.stack([np.concatenate([o[q] for o in outs])[lat:lat + mix.shape[0]] for q in range(2)])
    return Snapshots(snaps, out, eng.k_lo, wall, eng.info())
