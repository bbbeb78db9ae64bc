"""Slow, plain-numpy references for the kernels: the maths written the obvious way."""

from __future__ import annotations

import numpy as np


def highpass(x: np.ndarray, fc: float, fs: float) -> np.ndarray:
    """One-pole DC blocker y[n] = a (y[n-1] + x[n] - x[n-1]), per column, from rest."""
    from scipy.signal import lfilter

    a = np.exp(-2 * np.pi * fc / fs)
    return lfilter([a, -a], [1.0, -a], x, axis=0)


def running_moments(x: np.ndarray, memory_s: float, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Covariance and full 4th-moment tensor after the last sample (growing window, then forgetting)."""
    beta_min = 1 - np.exp(-1 / (memory_s * fs))
    m = x.shape[1]
    c = np.zeros((m, m))
    t4 = np.zeros((m, m, m, m))
    for n, row in enumerate(x, start=1):
        b = max(1.0 / n, beta_min)
        c += b * (np.outer(row, row) - c)
        t4 += b * (np.einsum("i,j,k,l->ijkl", row, row, row, row) - t4)
    return c, t4


def symmetric_whitening(c: np.ndarray, eps_rel: float) -> np.ndarray:
    """V = U (Λ + ε)^(-1/2) Uᵀ with numpy's eigh."""
    lam, u = np.linalg.eigh(c)
    eps = eps_rel * np.clip(lam, 0, None).sum() / c.shape[0] + 1e-300
    return (u / np.sqrt(np.clip(lam, 0, None) + eps)) @ u.T


def cumulants(t4: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """4th cumulant tensor of y = d x given E[x⊗4] = t4 and cov(x) = c."""
    m4 = np.einsum("ai,bj,ck,dl,ijkl->abcd", d, d, d, d, t4)
    cy = d @ c @ d.T
    gauss = (np.einsum("ab,cd->abcd", cy, cy) + np.einsum("ac,bd->abcd", cy, cy)
             + np.einsum("ad,bc->abcd", cy, cy))
    return m4 - gauss


def pair_contrast(k: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """J(φ) = κ₁(φ)² + κ₂(φ)² of a 2×2 rotation of outputs with cumulant tensor k (2,2,2,2)."""
    out = []
    for p in np.atleast_1d(phi):
        g = np.array([[np.cos(p), np.sin(p)], [-np.sin(p), np.cos(p)]])
        kr = np.einsum("ai,bj,ck,dl,ijkl->abcd", g, g, g, g, k)
        out.append(kr[0, 0, 0, 0] ** 2 + kr[1, 1, 1, 1] ** 2)
    return np.array(out)


def best_angle_grid(k: np.ndarray, points: int = 200001) -> float:
    """Global maximiser of the pair contrast on a fine grid over (−π/4, π/4]."""
    phi = np.linspace(-np.pi / 4, np.pi / 4, points)
    return float(phi[np.argmax(pair_contrast(k, phi))])


def modulation_reference(y: np.ndarray, p) -> list[float]:
    """Syllabic modulation (dB) of each column of y after the last whole frame, written the obvious way.

    Band levels per frame with scipy's lfilter, floored ``p.depth_db`` below the
    loudest output in the band, 2-8 Hz band-pass as the difference of two
    one-pole smoothers clipped at ``p.swing_db``, running mean square
    (growing window, then forgetting).
    """
    from scipy.signal import lfilter

    n_frames = y.shape[0] // p.frame
    q, nb = y.shape[1], p.bq_b.shape[0]
    lev = np.empty((n_frames, q, nb))
    for k in range(q):
        for b in range(nb):
            e = lfilter(p.bq_b[b], p.bq_a[b], y[:, k])[:n_frames * p.frame] ** 2
            lev[:, k, b] = 10 * np.log10(e.reshape(n_frames, p.frame).mean(axis=1) + 1e-30)
    lev = np.maximum(lev, np.maximum(-100.0, lev.max(axis=1, keepdims=True) - p.depth_db))
    fast, slow, mod = lev[0].copy(), lev[0].copy(), np.zeros((q, nb))
    for f in range(n_frames):
        fast = p.fast * fast + (1 - p.fast) * lev[f]
        slow = p.slow * slow + (1 - p.slow) * lev[f]
        g = max(1.0 / (f + 1), 1 - p.keep)
        mod += g * (np.minimum(p.swing_db, np.abs(fast - slow)) ** 2 - mod)
    return list(np.sqrt(mod).mean(axis=1))
