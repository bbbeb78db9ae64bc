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
