"""Kurtosis ICA on running cumulants: the rotation that maximises non-Gaussianity.

After whitening, demixing is a rotation. For a pair of whitened outputs
rotated by φ, the contrast ``J(φ) = κ₁(φ)² + κ₂(φ)²`` (κ the 4th cumulant)
is a trigonometric polynomial with harmonics 0, 4φ and 8φ only, so eight
samples of it over a period give its Fourier coefficients exactly; its
maximum is then found by Newton steps from φ = 0 (the current rotation, so
outputs do not swap needlessly) and, periodically, a grid over the whole
period to escape a wrong local maximum. More than two sources are handled by
Jacobi sweeps of the same pairwise rotation (Comon's method).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def mode_product4(t: np.ndarray, d: np.ndarray, out: np.ndarray, w1: np.ndarray,
                  w2: np.ndarray, w3: np.ndarray) -> None:
    """``out[a,b,c,e] = Σ d[a,i] d[b,j] d[c,k] d[e,l] t[i,j,k,l]``.

    Parameters
    ----------
    t : ndarray, shape (M, M, M, M)
        Symmetric tensor.
    d : ndarray, shape (Q, M)
        Matrix applied along every mode.
    out : ndarray, shape (Q, Q, Q, Q)
        Result.
    w1, w2, w3 : ndarray
        Scratch of shapes (Q, M, M, M), (Q, Q, M, M), (Q, Q, Q, M).
    """
    q, m = d.shape
    for a in range(q):
        for j in range(m):
            for k in range(m):
                for l in range(m):
                    acc = 0.0
                    for i in range(m):
                        acc += d[a, i] * t[i, j, k, l]
                    w1[a, j, k, l] = acc
    for a in range(q):
        for b in range(q):
            for k in range(m):
                for l in range(m):
                    acc = 0.0
                    for j in range(m):
                        acc += d[b, j] * w1[a, j, k, l]
                    w2[a, b, k, l] = acc
    for a in range(q):
        for b in range(q):
            for c in range(q):
                for l in range(m):
                    acc = 0.0
                    for k in range(m):
                        acc += d[c, k] * w2[a, b, k, l]
                    w3[a, b, c, l] = acc
    for a in range(q):
        for b in range(q):
            for c in range(q):
                for e in range(q):
                    acc = 0.0
                    for l in range(m):
                        acc += d[e, l] * w3[a, b, c, l]
                    out[a, b, c, e] = acc


@njit(cache=True)
def subtract_gaussian_part(moment4: np.ndarray, cov: np.ndarray) -> None:
    """Turn 4th moments of zero-mean signals into 4th cumulants, in place.

    ``κ[a,b,c,d] = E[y_a y_b y_c y_d] − (C_ab C_cd + C_ac C_bd + C_ad C_bc)``.
    """
    q = cov.shape[0]
    for a in range(q):
        for b in range(q):
            for c in range(q):
                for d in range(q):
                    moment4[a, b, c, d] -= (cov[a, b] * cov[c, d] + cov[a, c] * cov[b, d]
                                            + cov[a, d] * cov[b, c])


@njit(cache=True, inline="always")
def pair_kurtoses(k0: float, k1: float, k2: float, k3: float, k4: float,
                  phi: float) -> tuple[float, float]:
    """Kurtoses of a pair of outputs rotated by φ, from their five pair cumulants."""
    c = np.cos(phi)
    s = np.sin(phi)
    c2 = c * c
    s2 = s * s
    kp = c2 * c2 * k0 + 4.0 * c2 * c * s * k1 + 6.0 * c2 * s2 * k2 + 4.0 * c * s2 * s * k3 + s2 * s2 * k4
    kq = s2 * s2 * k0 - 4.0 * s2 * s * c * k1 + 6.0 * c2 * s2 * k2 - 4.0 * s * c2 * c * k3 + c2 * c2 * k4
    return kp, kq


@njit(cache=True, inline="always")
def _series(coef: np.ndarray, u: float) -> tuple[float, float, float]:
    cu = np.cos(u)
    su = np.sin(u)
    c2u = cu * cu - su * su
    s2u = 2.0 * su * cu
    j = coef[0] + coef[1] * cu + coef[2] * su + coef[3] * c2u + coef[4] * s2u
    dj = -coef[1] * su + coef[2] * cu - 2.0 * coef[3] * s2u + 2.0 * coef[4] * c2u
    ddj = -coef[1] * cu - coef[2] * su - 4.0 * coef[3] * c2u - 4.0 * coef[4] * s2u
    return j, dj, ddj


@njit(cache=True, inline="always")
def _newton_max(coef: np.ndarray, u: float, iters: int) -> float:
    for _ in range(iters):
        _j, dj, ddj = _series(coef, u)
        if ddj < 0.0:
            step = -dj / ddj
        else:
            step = 0.25 if dj > 0.0 else -0.25  # not concave here: climb, do not jump to a minimum
        if step > 0.5:
            step = 0.5
        elif step < -0.5:
            step = -0.5
        u += step
        if abs(step) < 1e-12:
            break
    return u


@njit(cache=True)
def pair_contrast_coefficients(k0: float, k1: float, k2: float, k3: float, k4: float,
                               coef: np.ndarray) -> None:
    """Fourier coefficients of the pair contrast in ``u = 4φ``.

    Parameters
    ----------
    k0, k1, k2, k3, k4 : float
        Cumulants κ_pppp, κ_pppq, κ_ppqq, κ_pqqq, κ_qqqq of the pair (p, q).
    coef : ndarray, shape (5,)
        Out: ``J(u) = c0 + c1 cos u + c2 sin u + c3 cos 2u + c4 sin 2u``.
    """
    for i in range(5):
        coef[i] = 0.0
    for n in range(8):
        u = 2.0 * np.pi * n / 8.0
        kp, kq = pair_kurtoses(k0, k1, k2, k3, k4, 0.25 * u)
        j = kp * kp + kq * kq
        coef[0] += j / 8.0
        coef[1] += j * np.cos(u) / 4.0
        coef[2] += j * np.sin(u) / 4.0
        coef[3] += j * np.cos(2.0 * u) / 4.0
        coef[4] += j * np.sin(2.0 * u) / 4.0


@njit(cache=True)
def best_pair_angle(k0: float, k1: float, k2: float, k3: float, k4: float,
                    global_search: bool, coef: np.ndarray) -> float:
    """Rotation angle φ (radians, in (−π/4, π/4]) maximising the pair contrast.

    Newton ascent from φ = 0 finds the maximum nearest the current rotation;
    with ``global_search`` a 32-point grid over the period is also tried and
    wins only if its contrast is clearly (2 %) higher.
    """
    pair_contrast_coefficients(k0, k1, k2, k3, k4, coef)
    u = _newton_max(coef, 0.0, 12)
    j_loc, _d, _dd = _series(coef, u)
    if global_search:
        best_u = u
        best_j = j_loc
        for n in range(32):
            ug = -np.pi + 2.0 * np.pi * n / 32.0
            jg, _d, _dd = _series(coef, ug)
            if jg > best_j:
                best_j = jg
                best_u = ug
        if best_u != u:
            best_u = _newton_max(coef, best_u, 8)
            jg, _d, _dd = _series(coef, best_u)
            if jg > j_loc + 0.02 * abs(j_loc) + 1e-300:
                u = best_u
    # the contrast has period 2π in u (π/2 in φ): wrap into (−π, π]
    u = u - 2.0 * np.pi * np.floor((u + np.pi) / (2.0 * np.pi))
    if u <= -np.pi:
        u += 2.0 * np.pi
    return 0.25 * u


@njit(cache=True)
def givens_rows(a: np.ndarray, p: int, q: int, c: float, s: float) -> None:
    """Rotate rows p, q of a 2-D array: ``a_p ← c a_p + s a_q``, ``a_q ← −s a_p + c a_q``."""
    for k in range(a.shape[1]):
        ap = a[p, k]
        aq = a[q, k]
        a[p, k] = c * ap + s * aq
        a[q, k] = -s * ap + c * aq


@njit(cache=True)
def givens_tensor4(t: np.ndarray, p: int, q: int, c: float, s: float) -> None:
    """Apply the same Givens rotation along all four modes of a (Q, Q, Q, Q) tensor."""
    n = t.shape[0]
    for j in range(n):
        for k in range(n):
            for l in range(n):
                tp = t[p, j, k, l]
                tq = t[q, j, k, l]
                t[p, j, k, l] = c * tp + s * tq
                t[q, j, k, l] = -s * tp + c * tq
    for i in range(n):
        for k in range(n):
            for l in range(n):
                tp = t[i, p, k, l]
                tq = t[i, q, k, l]
                t[i, p, k, l] = c * tp + s * tq
                t[i, q, k, l] = -s * tp + c * tq
    for i in range(n):
        for j in range(n):
            for l in range(n):
                tp = t[i, j, p, l]
                tq = t[i, j, q, l]
                t[i, j, p, l] = c * tp + s * tq
                t[i, j, q, l] = -s * tp + c * tq
    for i in range(n):
        for j in range(n):
            for k in range(n):
                tp = t[i, j, k, p]
                tq = t[i, j, k, q]
                t[i, j, k, p] = c * tp + s * tq
                t[i, j, k, q] = -s * tp + c * tq


@njit(cache=True)
def jacobi_sweep(cum: np.ndarray, cov: np.ndarray, rot: np.ndarray, global_search: bool,
                 coef: np.ndarray) -> float:
    """One Jacobi sweep over all output pairs, maximising Σ κ_k².

    Parameters
    ----------
    cum : ndarray, shape (Q, Q, Q, Q)
        4th cumulants of the current outputs; rotated in place.
    cov : ndarray, shape (Q, Q)
        Covariance of the current outputs; rotated in place (rows and columns).
    rot : ndarray, shape (Q, Q)
        The orthogonal demixing rotation; updated in place, ``rot ← G rot``.
    global_search : bool
        Also try a grid over the whole period for every pair.
    coef : ndarray, shape (5,)
        Scratch.

    Returns
    -------
    float
        Largest |φ| applied (radians): how far the rotation moved.
    """
    q = cum.shape[0]
    moved = 0.0
    for p in range(q - 1):
        for r in range(p + 1, q):
            phi = best_pair_angle(cum[p, p, p, p], cum[p, p, p, r], cum[p, p, r, r],
                                  cum[p, r, r, r], cum[r, r, r, r], global_search, coef)
            if phi == 0.0:
                continue
            c = np.cos(phi)
            s = np.sin(phi)
            givens_tensor4(cum, p, r, c, s)
            givens_rows(rot, p, r, c, s)
            givens_rows(cov, p, r, c, s)
            givens_rows(cov.T, p, r, c, s)
            moved = max(moved, abs(phi))
    return moved


@njit(cache=True)
def orthonormalise_rows(a: np.ndarray) -> None:
    """Modified Gram–Schmidt on the rows, so accumulated rotations stay orthogonal."""
    q, m = a.shape
    for i in range(q):
        for j in range(i):
            d = 0.0
            for k in range(m):
                d += a[i, k] * a[j, k]
            for k in range(m):
                a[i, k] -= d * a[j, k]
        nrm = 0.0
        for k in range(m):
            nrm += a[i, k] * a[i, k]
        nrm = np.sqrt(nrm)
        if nrm > 0.0:
            for k in range(m):
                a[i, k] /= nrm
