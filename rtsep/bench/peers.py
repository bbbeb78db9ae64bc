"""The separators compared: rtsep td/fd and the published peers, each run on one mixture."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError
from .mixtures import Mixture

#: rtsep is fed in blocks of this many samples, as in a live stream.
STREAM_BLOCK = 256
#: STFT of the pyroomacoustics batch methods: 128 ms frames, hop 1/4; the
#: usual choice for batch IVA in rooms (the pra examples use 2048 at 16 kHz).
STFT_FRAME = 2048
BATCH_ITER = 30
#: Demixing filter length of TRINICON (samples); 64 was worse and 4x slower per second.
TRINICON_TAPS = 256


class NotInstalled(Exception):
    """The peer's package cannot be imported."""


@dataclass
class Run:
    """What one method produced on one mixture.

    Attributes
    ----------
    est : ndarray, shape (2, n)
        Output signals at the reference mic, aligned with the input.
    seconds : float
        Wall-clock processing time (s), compilation excluded.
    online : bool
        Whether output sample i depends only on input up to i (+ latency).
    labelled : bool
        Whether ``est[0]`` is the method's own choice of the voice.
    latency_samples : int
        Algorithmic latency (samples); the whole file for batch methods.
    """

    est: np.ndarray
    seconds: float
    online: bool
    labelled: bool
    latency_samples: int


def _proj_back_ls(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Scale each output (rows of y) by its least-squares fit onto the reference mic."""
    den = np.sum(y * y, axis=1)
    return y * (y @ ref / np.where(den > 0, den, 1.0))[:, None]


def run_rtsep(m: Mixture, engine: str) -> Run:
    """Stream the mixture through a warmed-up :class:`rtsep.Separator` in 256-sample blocks."""
    from rtsep import Separator

    sep = Separator(m.fs, engine=engine).warmup()
    lat = sep.latency_samples
    x = np.vstack([m.x, np.zeros((lat, 2))])  # flush the engine's delay
    vs, bs = [], []
    t0 = time.perf_counter()
    for s in range(0, x.shape[0], STREAM_BLOCK):
        v, b = sep.process(x[s:s + STREAM_BLOCK])
        vs.append(v)
        bs.append(b)
    dt = time.perf_counter() - t0
    est = np.stack([np.concatenate(vs), np.concatenate(bs)]).astype(np.float64)[:, lat:]
    return Run(est, dt, True, True, lat)


def run_fastica(m: Mixture) -> Run:
    """scikit-learn FastICA on the time samples (instantaneous model)."""
    try:
        from sklearn.decomposition import FastICA
    except ImportError:
        raise NotInstalled("scikit-learn") from None
    t0 = time.perf_counter()
    y = FastICA(n_components=2, whiten="unit-variance", max_iter=1000, random_state=0).fit_transform(m.x).T
    est = _proj_back_ls(y, m.x[:, 0])
    return Run(est, time.perf_counter() - t0, False, False, m.x.shape[0])


def run_picard(m: Mixture) -> Run:
    """python-picard, Picard-O (orthogonal constraint, extended: sub- and super-Gaussian sources)."""
    try:
        from picard import picard
    except ImportError:
        raise NotInstalled("python-picard") from None
    t0 = time.perf_counter()
    _k, _w, y = picard(m.x.T.copy(), n_components=2, ortho=True, extended=True, max_iter=1000, random_state=0)
    est = _proj_back_ls(y, m.x[:, 0])
    return Run(est, time.perf_counter() - t0, False, False, m.x.shape[0])


def _run_pra(m: Mixture, algo: str) -> Run:
    try:
        from rtsep.material.rooms import import_pyroomacoustics

        pra = import_pyroomacoustics()
    except Exception:
        raise NotInstalled("pyroomacoustics") from None
    L, hop = STFT_FRAME, STFT_FRAME // 4
    win_a = pra.hann(L)
    win_s = pra.transform.stft.compute_synthesis_window(win_a, hop)
    n = m.x.shape[0]
    t0 = time.perf_counter()
    # zero-pad so the synthesis covers the whole input after removing its L - hop delay
    xp = np.vstack([m.x, np.zeros((L, 2))])
    X = pra.transform.stft.analysis(xp, L, hop, win=win_a)
    fn = pra.bss.auxiva if algo == "auxiva" else pra.bss.ilrma
    np.random.seed(0)  # ILRMA draws its NMF start from the global generator: same run, same score
    Y = fn(X, n_iter=BATCH_ITER, proj_back=True)  # projection back onto mic 0
    y = pra.transform.stft.synthesis(Y, L, hop, win=win_s)
    dt = time.perf_counter() - t0
    est = np.real(y[L - hop:L - hop + n].T).astype(np.float64)
    if est.shape[1] < n:
        est = np.pad(est, ((0, 0), (0, n - est.shape[1])))
    return Run(est, dt, False, False, n)


def run_trinicon(m: Mixture) -> Run:
    """pyroomacoustics TRINICON: online block-wise second-order BSS with 256-tap demixing filters.

    Its outputs are not scaled to a microphone; a least-squares gain onto mic 1
    is fitted afterwards (a scalar, so in rooms it is an approximation of a
    projection back). Each block of 256 samples is output with the filters
    learnt up to it, so its algorithmic latency is one block.
    """
    try:
        from rtsep.material.rooms import import_pyroomacoustics

        pra = import_pyroomacoustics()
    except Exception:
        raise NotInstalled("pyroomacoustics") from None
    n = m.x.shape[0]
    t0 = time.perf_counter()
    y = pra.bss.trinicon(m.x.T.copy(), filter_length=TRINICON_TAPS)[:, :n]
    est = _proj_back_ls(y, m.x[:, 0])
    return Run(est, time.perf_counter() - t0, True, False, TRINICON_TAPS)


def run_auxiva(m: Mixture) -> Run:
    """pyroomacoustics AuxIVA (Laplace model), batch, STFT 2048/512, projection back."""
    return _run_pra(m, "auxiva")


def run_ilrma(m: Mixture) -> Run:
    """pyroomacoustics ILRMA (2 NMF bases), batch, STFT 2048/512, projection back."""
    return _run_pra(m, "ilrma")


METHODS: dict[str, Callable[[Mixture], Run]] = {
    "rtsep td": lambda m: run_rtsep(m, "td"),
    "rtsep fd": lambda m: run_rtsep(m, "fd"),
    "FastICA (sklearn)": run_fastica,
    "Picard": run_picard,
    "AuxIVA (pra)": run_auxiva,
    "ILRMA (pra)": run_ilrma,
    "TRINICON (pra, online)": run_trinicon,
}

#: what ``--methods`` accepts besides the full names (case does not matter)
SHORT_NAMES: dict[str, str] = {
    "td": "rtsep td", "fd": "rtsep fd", "fastica": "FastICA (sklearn)", "picard": "Picard",
    "auxiva": "AuxIVA (pra)", "ilrma": "ILRMA (pra)", "trinicon": "TRINICON (pra, online)",
}


def resolve_methods(text: str | None) -> list[str] | None:
    """``"td,fastica"`` → the :data:`METHODS` names; None (all) for None or "".

    Raises
    ------
    ConfigError
        A name that is neither a short nor a full method name.
    """
    if not text:
        return None
    full = {k.lower(): k for k in METHODS}
    names = []
    for raw in (s.strip() for s in text.split(",")):
        if not raw:
            continue
        key = raw.lower()
        name = SHORT_NAMES.get(key) or full.get(key)
        if name is None:
            raise ConfigError(f"--methods: unknown method {raw!r}; choose from {', '.join(SHORT_NAMES)}")
        names.append(name)
    return names
