"""Running second- and fourth-order moments of the DC-free microphone signals.

The 4th-order moment tensor of M channels is symmetric, so only its
C(M+3, 4) distinct entries are accumulated per sample (5 for two mics);
:func:`quartic_index_table` lists them and :func:`expand_quartic` rebuilds
the full tensor when the rotation is updated.
"""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np
from numba import njit


def quartic_index_table(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct entries of a symmetric order-4 tensor in ``m`` dimensions.

    Parameters
    ----------
    m : int
        Number of channels.

    Returns
    -------
    idx4 : ndarray, shape (P, 4), int64
        Index quadruples ``i ≤ j ≤ k ≤ l``, P = C(m+3, 4).
    full_map : ndarray, shape (m, m, m, m), int64
        Row of ``idx4`` holding entry ``[a, b, c, d]`` of the full tensor.
    """
    quads = list(combinations_with_replacement(range(m), 4))
    idx4 = np.asarray(quads, dtype=np.int64).reshape(-1, 4)
    full_map = np.empty((m, m, m, m), dtype=np.int64)
    where = {q: i for i, q in enumerate(quads)}
    for a in range(m):
        for b in range(m):
            for c in range(m):
                for d in range(m):
                    full_map[a, b, c, d] = where[tuple(sorted((a, b, c, d)))]
    return idx4, full_map


@njit(cache=True, inline="always")
def forgetting_weight(n: int, beta_min: float) -> float:
    """Weight of sample number ``n`` (1-based) in the running averages.

    ``1/n`` for the first samples (a true average over a growing window),
    then the constant ``1 - λ`` of the exponential forgetting.
    """
    w = 1.0 / n
    return w if w > beta_min else beta_min


@njit(cache=True, inline="always")
def accumulate_moments(x: np.ndarray, beta: float, cov: np.ndarray, m4: np.ndarray,
                       idx4: np.ndarray) -> None:
    """Blend one sample into the running moments.

    Parameters
    ----------
    x : ndarray, shape (M,)
        One DC-free sample per microphone.
    beta : float
        Weight of this sample (see :func:`forgetting_weight`).
    cov : ndarray, shape (M, M)
        Running covariance; only the upper triangle is kept current.
    m4 : ndarray, shape (P,)
        Running distinct 4th-order moments (order of ``idx4``).
    idx4 : ndarray, shape (P, 4)
        Index table from :func:`quartic_index_table`.
    """
    m = x.shape[0]
    for i in range(m):
        for j in range(i, m):
            cov[i, j] += beta * (x[i] * x[j] - cov[i, j])
    for p in range(idx4.shape[0]):
        v = x[idx4[p, 0]] * x[idx4[p, 1]] * x[idx4[p, 2]] * x[idx4[p, 3]]
        m4[p] += beta * (v - m4[p])


@njit(cache=True)
def symmetric_from_upper(cov: np.ndarray, out: np.ndarray) -> None:
    """Write the full symmetric matrix whose upper triangle is ``cov`` into ``out``."""
    m = cov.shape[0]
    for i in range(m):
        for j in range(i, m):
            out[i, j] = cov[i, j]
            out[j, i] = cov[i, j]


@njit(cache=True)
def expand_quartic(m4: np.ndarray, full_map: np.ndarray, out: np.ndarray) -> None:
    """Write the full (M, M, M, M) moment tensor from its distinct entries."""
    m = full_map.shape[0]
    for a in range(m):
        for b in range(m):
            for c in range(m):
                for d in range(m):
                    out[a, b, c, d] = m4[full_map[a, b, c, d]]
