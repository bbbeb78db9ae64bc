"""Separation quality in dB with the reference BSS-Eval implementation (mir_eval).

(fast_bss_eval was the first choice for speed, but its 0.1.4 release calls
``np.linalg.solve`` with the pre-NumPy-2 broadcasting rule and fails on NumPy 2;
mir_eval's ``bss_eval_sources`` takes ~0.15 s for 8 s of two sources here.)

Scores are reported as *improvements*: the metric of an output minus the same
metric of the unprocessed reference microphone, against the same references
(the sources' images at that microphone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DependencyError


def _bss_eval(refs: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, ...]:
    try:
        from mir_eval.separation import bss_eval_sources
    except ImportError:
        raise DependencyError("quality metrics need the package mir_eval (pip install 'mir_eval<0.9')") from None
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


def time_to_reach(t_end: np.ndarray, values: np.ndarray, threshold_db: float) -> float:
    """First time (s) from which ``values`` stays ≥ ``threshold_db`` to the end; inf if never."""
    ok = np.asarray(values) >= threshold_db
    if not ok[-1]:
        return float("inf")
    bad = np.flatnonzero(~ok)
    first = 0 if bad.size == 0 else bad[-1] + 1
    return float(t_end[first])
