"""PCA whitening of the running covariance (the seed's ΣU = UΛ, per update).

With as many sources as microphones the whitening is the symmetric
``V = U (Λ + εI)^(-1/2) Uᵀ``: unlike the bare PCA rotation ``Λ^(-1/2) Uᵀ`` it
does not flip sign or order when eigenvalues cross, so V moves smoothly as
the covariance drifts. With fewer sources (Q < M) the top-Q principal
subspace is kept and aligned to the previous V by an orthogonal Procrustes
step, for the same reason.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def jacobi_eigh(a: np.ndarray, evals: np.ndarray, evecs: np.ndarray, work: np.ndarray) -> None:
    """Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations.

    Parameters
    ----------
    a : ndarray, shape (M, M)
        Symmetric matrix (not modified).
    evals : ndarray, shape (M,)
        Out: eigenvalues, descending.
    evecs : ndarray, shape (M, M)
        Out: orthonormal eigenvectors as columns, in the order of ``evals``.
    work : ndarray, shape (M, M)
        Scratch space.

    Notes
    -----
    Jacobi is exact for 2×2 (one rotation), needs no LAPACK call and is
    accurate for the tiny eigenvalues of nearly rank-deficient covariances.
    """
    m = a.shape[0]
    for i in range(m):
        for j in range(m):
            work[i, j] = a[i, j]
            evecs[i, j] = 1.0 if i == j else 0.0
    for _sweep in range(50):
        off = 0.0
        scale = 0.0
        for i in range(m):
            scale += work[i, i] * work[i, i]
            for j in range(i + 1, m):
                off += work[i, j] * work[i, j]
        if off <= 1e-30 * scale or off == 0.0:
            break
        for p in range(m - 1):
            for q in range(p + 1, m):
                apq = work[p, q]
                if apq == 0.0:
                    continue
                theta = (work[q, q] - work[p, p]) / (2.0 * apq)
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + np.sqrt(theta * theta + 1.0))
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for k in range(m):
                    akp = work[k, p]
                    akq = work[k, q]
                    work[k, p] = c * akp - s * akq
                    work[k, q] = s * akp + c * akq
                for k in range(m):
                    apk = work[p, k]
                    aqk = work[q, k]
                    work[p, k] = c * apk - s * aqk
                    work[q, k] = s * apk + c * aqk
                for k in range(m):
                    vkp = evecs[k, p]
                    vkq = evecs[k, q]
                    evecs[k, p] = c * vkp - s * vkq
                    evecs[k, q] = s * vkp + c * vkq
    for i in range(m):
        evals[i] = work[i, i]
    # selection sort, descending, carrying the eigenvector columns along
    for i in range(m):
        best = i
        for j in range(i + 1, m):
            if evals[j] > evals[best]:
                best = j
        if best != i:
            tmp = evals[i]
            evals[i] = evals[best]
            evals[best] = tmp
            for k in range(m):
                tmp = evecs[k, i]
                evecs[k, i] = evecs[k, best]
                evecs[k, best] = tmp


@njit(cache=True)
def small_inverse(a: np.ndarray, out: np.ndarray, work: np.ndarray) -> bool:
    """Invert a small square matrix by Gauss–Jordan with partial pivoting.

    Returns False (and leaves ``out`` undefined) if ``a`` is numerically singular.
    """
    n = a.shape[0]
    for i in range(n):
        for j in range(n):
            work[i, j] = a[i, j]
            out[i, j] = 1.0 if i == j else 0.0
    scale = 0.0
    for i in range(n):
        for j in range(n):
            scale = max(scale, abs(a[i, j]))
    if scale == 0.0:
        return False
    for col in range(n):
        piv = col
        for r in range(col + 1, n):
            if abs(work[r, col]) > abs(work[piv, col]):
                piv = r
        if abs(work[piv, col]) <= 1e-14 * scale:
            return False
        if piv != col:
            for k in range(n):
                t = work[col, k]
                work[col, k] = work[piv, k]
                work[piv, k] = t
                t = out[col, k]
                out[col, k] = out[piv, k]
                out[piv, k] = t
        d = 1.0 / work[col, col]
        for k in range(n):
            work[col, k] *= d
            out[col, k] *= d
        for r in range(n):
            if r != col:
                f = work[r, col]
                if f != 0.0:
                    for k in range(n):
                        work[r, k] -= f * work[col, k]
                        out[r, k] -= f * out[col, k]
    return True


@njit(cache=True)
def whitening_matrix(cov: np.ndarray, eps_rel: float, v_prev: np.ndarray, v_out: np.ndarray,
                     evals: np.ndarray, evecs: np.ndarray, wmm: np.ndarray, wqq: np.ndarray,
                     wqq2: np.ndarray, wqq3: np.ndarray) -> None:
    """Whitening matrix of a covariance: ``v_out @ cov @ v_out.T ≈ I``.

    Parameters
    ----------
    cov : ndarray, shape (M, M)
        Symmetric covariance of the microphone signals.
    eps_rel : float
        Regulariser, relative to the mean eigenvalue: bounds the gain on
        directions with (almost) no energy.
    v_prev : ndarray, shape (Q, M)
        Previous whitening matrix (used only when Q < M, for continuity).
    v_out : ndarray, shape (Q, M)
        Out: the new whitening matrix.
    evals, evecs, wmm, wqq, wqq2, wqq3 : ndarray
        Scratch: shapes (M,), (M, M), (M, M), (Q, Q), (Q, Q), (Q, Q).
    """
    m = cov.shape[0]
    q = v_out.shape[0]
    jacobi_eigh(cov, evals, evecs, wmm)
    tr = 0.0
    for i in range(m):
        tr += max(evals[i], 0.0)
    eps = eps_rel * tr / m + 1e-300
    if q == m:
        for i in range(m):
            for j in range(m):
                acc = 0.0
                for k in range(m):
                    acc += evecs[i, k] * evecs[j, k] / np.sqrt(max(evals[k], 0.0) + eps)
                v_out[i, j] = acc
        return
    # top-Q PCA rows, then the rotation B closest to the previous V:
    # B = polar factor of (v_prev @ raw.T), found by Newton's iteration
    for k in range(q):
        g = 1.0 / np.sqrt(max(evals[k], 0.0) + eps)
        for j in range(m):
            v_out[k, j] = g * evecs[j, k]
    for a in range(q):
        for b in range(q):
            acc = 0.0
            for j in range(m):
                acc += v_prev[a, j] * v_out[b, j]
            wqq[a, b] = acc
    for _it in range(30):
        if not small_inverse(wqq, wqq2, wqq3):
            return  # degenerate overlap (e.g. at start): keep the plain PCA rows
        delta = 0.0
        for a in range(q):
            for b in range(q):
                nv = 0.5 * (wqq[a, b] + wqq2[b, a])
                delta = max(delta, abs(nv - wqq[a, b]))
                wqq3[a, b] = nv
        for a in range(q):
            for b in range(q):
                wqq[a, b] = wqq3[a, b]
        if delta < 1e-12:
            break
    for a in range(q):
        for j in range(m):
            acc = 0.0
            for b in range(q):
                acc += wqq[a, b] * v_out[b, j]
            wmm[a, j] = acc  # a < q < m, so wmm has the room
    for a in range(q):
        for j in range(m):
            v_out[a, j] = wmm[a, j]
