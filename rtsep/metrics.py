"""Separation quality in dB with standard BSS-Eval implementations.

Scores come from fast_bss_eval (fast, numpy), cross-checked against and
falling back to mir_eval (the reference implementation). fast_bss_eval 0.1.4
fails on NumPy 2 in its fixed-assignment path (``np.linalg.solve`` with the
old broadcasting rule) but its permutation-solving path works and agrees with
mir_eval to 1e-6 dB; so it is called with ``compute_permutation=True`` and,
when the best permutation is not the assignment asked for, mir_eval scores
the fixed assignment instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DependencyError


def _bss_eval(refs: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, ...]:
    try:
        import fast_bss_eval
    except ImportError:
        fast_bss_eval = None
    if fast_bss_eval is not None:
        with np.errstate(divide="ignore"):  # a silent stretch of a window gives log10(0): -inf, not an error
            sdr, sir, sar, perm = fast_bss_eval.bss_eval_sources(refs, est, compute_permutation=True)
        same_rows = bool(np.all(est == est[:1]))  # e.g. the unprocessed mixture: any assignment is the same
        if same_rows or np.array_equal(perm, np.arange(refs.shape[0])):
            return sdr, sir, sar
    try:
        from mir_eval.separation import bss_eval_sources
    except ImportError:
        raise DependencyError("quality metrics need fast_bss_eval and mir_eval "
                              "(pip install fast_bss_eval 'mir_eval<0.9')") from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecation notice of 0.8, API unchanged
        sdr, sir, sar, _perm = bss_eval_sources(refs, est, compute_permutation=False)
    return sdr, sir, sar


@dataclass(frozen=True)
class Improvement:
    """BSS-Eval scores of each output and their improvement over the mixture.

    All arrays have shape (K,) for K sources, in dB.
    """

    sdr: np.ndarray
    sir: np.ndarray
    sar: np.ndarray
    sdr_mix: np.ndarray
    sir_mix: np.ndarray

    @property
    def sdr_improvement(self) -> np.ndarray:
        """SDR of each output minus SDR of the reference mic (dB)."""
        return self.sdr - self.sdr_mix

    @property
    def sir_improvement(self) -> np.ndarray:
        """SIR of each output minus SIR of the reference mic (dB)."""
        return self.sir - self.sir_mix


def improvement(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray) -> Improvement:
    """BSS-Eval SDR/SIR/SAR of estimates and of the unprocessed mixture.

    Parameters
    ----------
    estimates : ndarray, shape (K, n)
        Separated signals, ``estimates[k]`` meant to match ``references[k]``.
    references : ndarray, shape (K, n)
        True source images at the reference microphone.
    mixture : ndarray, shape (n,)
        The reference microphone signal (the "do nothing" baseline).

    Returns
    -------
    Improvement
    """
    refs = np.asarray(references, dtype=np.float64)
    est = np.asarray(estimates, dtype=np.float64)
    mix = np.broadcast_to(np.asarray(mixture, dtype=np.float64), refs.shape)
    sdr, sir, sar = _bss_eval(refs, est)
    sdr0, sir0, _ = _bss_eval(refs, np.array(mix))
    return Improvement(sdr=sdr, sir=sir, sar=sar, sdr_mix=sdr0, sir_mix=sir0)


def sliding_sir_improvement(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray,
                            fs: float, window_s: float = 1.0, hop_s: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """SIR improvement of each output over time, on sliding windows.

    Parameters
    ----------
    estimates, references : ndarray, shape (K, n)
    mixture : ndarray, shape (n,)
    fs : float
        Sample rate (Hz).
    window_s, hop_s : float
        Window length and hop (seconds).

    Returns
    -------
    t_end : ndarray, shape (W,)
        End time of each window (seconds): a value at t uses only audio up to t.
    sir_imp : ndarray, shape (K, W)
        SIR improvement per output and window (dB).
    """
    win = int(round(window_s * fs))
    hop = int(round(hop_s * fs))
    n = np.shape(references)[1]
    starts = list(range(0, max(n - win, 0) + 1, hop))
    t_end = np.array([(s + win) / fs for s in starts])
    out = np.empty((np.shape(references)[0], len(starts)))
    for i, s in enumerate(starts):
        sl = slice(s, s + win)
        imp = improvement(np.asarray(estimates)[:, sl], np.asarray(references)[:, sl],
                          np.asarray(mixture)[sl])
        out[:, i] = imp.sir_improvement
    return t_end, out


def time_to_reach(t_end: np.ndarray, values: np.ndarray, threshold_db: float,
                  hold: int | None = None) -> float:
    """First time (s) from which ``values`` stays ≥ ``threshold_db``; inf if never.

    Parameters
    ----------
    t_end : ndarray, shape (W,)
        Window end times (seconds).
    values : ndarray, shape (W,)
        The measure per window (dB).
    threshold_db : float
        Level to reach (dB).
    hold : int, optional
        It must stay there for this many further windows; None: to the end.
    """
    ok = np.asarray(values) >= threshold_db
    if hold is None:
        if not ok[-1]:
            return float("inf")
        bad = np.flatnonzero(~ok)
        first = 0 if bad.size == 0 else bad[-1] + 1
        return float(t_end[first])
    for i in range(len(ok) - hold):
        if ok[i:i + hold + 1].all():
            return float(t_end[i])
    return float("inf")


#: Band edges (Hz) of :func:`band_sdr` by default: the voice's bands at 16 kHz.
BAND_EDGES_HZ = (0.0, 250.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0, 6000.0, 8001.0)


def band_sdr(estimate: np.ndarray, reference: np.ndarray, fs: float,
             edges: tuple[float, ...] = BAND_EDGES_HZ, nperseg: int = 1024) -> np.ndarray:
    """Signal-to-error ratio (dB) of ``estimate`` against ``reference``, band by band.

    Each STFT bin of the estimate may carry the reference through one complex
    gain (least squares over the whole signal), so a band's figure is free of
    the per-bin scaling that a projection back leaves; what counts as error is
    what is not the reference in that bin. Used to see which of two outputs
    holds a source in each band (``bench/band_permutations.py``).

    Parameters
    ----------
    estimate, reference : ndarray, shape (n,)
        Aligned signals.
    fs : float
        Sample rate (Hz).
    edges : tuple of float
        Band edges (Hz), increasing.
    nperseg : int
        STFT length (samples; hop a quarter of it).

    Returns
    -------
    ndarray, shape (len(edges) - 1,)
        dB per band.
    """
    from scipy.signal import stft

    kw = dict(fs=fs, nperseg=nperseg, noverlap=nperseg - nperseg // 4)
    freqs, _, ref = stft(np.asarray(reference, dtype=np.float64), **kw)
    _, _, est = stft(np.asarray(estimate, dtype=np.float64), **kw)
    gain = np.sum(est * ref.conj(), axis=1) / np.maximum(np.sum(np.abs(ref) ** 2, axis=1), 1e-30)
    target = gain[:, None] * ref
    err = np.sum(np.abs(est - target) ** 2, axis=1)
    sig = np.sum(np.abs(target) ** 2, axis=1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (freqs >= lo) & (freqs < hi)
        out.append(10.0 * np.log10(max(float(sig[m].sum()), 1e-30) / max(float(err[m].sum()), 1e-30)))
    return np.array(out)
