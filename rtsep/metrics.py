"""Separation quality in dB with a standard BSS-Eval implementation (fast_bss_eval).

Scores are reported as *improvements*: the metric of an output minus the same
metric of the unprocessed reference microphone, against the same references
(the sources' images at that microphone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DependencyError


def _bss_eval(refs: np.ndarray, est: np.ndarray, filter_length: int) -> tuple[np.ndarray, ...]:
    try:
        import fast_bss_eval
    except ImportError:
        raise DependencyError("quality metrics need the package fast_bss_eval (pip install fast_bss_eval)") from None
    return fast_bss_eval.bss_eval_sources(refs, est, filter_length=filter_length,
                                          compute_permutation=False, clamp_db=150)


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


def improvement(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray,
                filter_length: int = 512) -> Improvement:
    """BSS-Eval SDR/SIR/SAR of estimates and of the unprocessed mixture.

    Parameters
    ----------
    estimates : ndarray, shape (K, n)
        Separated signals, ``estimates[k]`` meant to match ``references[k]``.
    references : ndarray, shape (K, n)
        True source images at the reference microphone.
    mixture : ndarray, shape (n,)
        The reference microphone signal (the "do nothing" baseline).
    filter_length : int
        BSS-Eval distortion filter length (samples); 512 is the standard.

    Returns
    -------
    Improvement
    """
    refs = np.asarray(references, dtype=np.float64)
    est = np.asarray(estimates, dtype=np.float64)
    mix = np.broadcast_to(np.asarray(mixture, dtype=np.float64), refs.shape)
    sdr, sir, sar = _bss_eval(refs, est, filter_length)
    sdr0, sir0, _ = _bss_eval(refs, np.array(mix), filter_length)
    return Improvement(sdr=sdr, sir=sir, sar=sar, sdr_mix=sdr0, sir_mix=sir0)


def sliding_sir_improvement(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray,
                            fs: float, window_s: float = 1.0, hop_s: float = 0.25,
                            filter_length: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """SIR improvement of each output over time, on sliding windows.

    Parameters
    ----------
    estimates, references : ndarray, shape (K, n)
    mixture : ndarray, shape (n,)
    fs : float
        Sample rate (Hz).
    window_s, hop_s : float
        Window length and hop (seconds).
    filter_length : int
        BSS-Eval filter length (samples); shorter than the window.

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
                          np.asarray(mixture)[sl], filter_length=filter_length)
        out[:, i] = imp.sir_improvement
    return t_end, out


def time_to_reach(t_end: np.ndarray, values: np.ndarray, threshold_db: float) -> float:
    """First time (s) from which ``values`` stays ≥ ``threshold_db`` to the end; inf if never."""
    ok = np.asarray(values) >= threshold_db
    if not ok[-1]:
        return float("inf")
    bad = np.flatnonzero(~ok)
    first = 0 if bad.size == 0 else bad[-1] + 1
    return float(t_end[first])
