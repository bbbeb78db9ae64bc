"""Closed-form updates of one bin's 2x2 demixer from the two weighted covariances (DESIGN §3).

The online IVA (:mod:`rtsep.kernels.iva`) minimises its auxiliary function
per bin exactly, with no step size: :func:`gev_pair` without constraint (IP2,
the generalised eigenvectors of the pencil (V_1, V_2)), :func:`whitened_pair`
with the outputs kept uncorrelated (the seed's PCA-then-rotation, per bin).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Below this relative spread of the two generalised eigenvalues the pencil
#: (V_1, V_2) is degenerate (both sources weighted alike, e.g. on the first
#: frame): any vector is an eigenvector, so the bin keeps its demixer.
_DEGENERATE = 1e-12


@njit(cache=True)
def hermitian_quad(v: np.ndarray, w0: complex, w1: complex) -> float:
    """w^H V w for a Hermitian 2x2 V (real by construction)."""
    return (v[0, 0].real * (w0.real * w0.real + w0.imag * w0.imag)
            + v[1, 1].real * (w1.real * w1.real + w1.imag * w1.imag)
            + 2.0 * (np.conj(w0) * v[0, 1] * w1).real)


@njit(cache=True)
def gev_pair(v1: np.ndarray, v2: np.ndarray, out: np.ndarray) -> bool:
    """Closed-form IP2 update: generalised eigenvectors of a Hermitian 2x2 pencil.

    Parameters
    ----------
    v1, v2 : ndarray, shape (2, 2), complex128
        Hermitian positive-definite weighted covariances of source 1 and 2.
    out : ndarray, shape (2, 2), complex128
        ``out[q]`` receives w_q, scaled so that ``w_q^H V_q w_q = 1``.
        ``out[0]`` has the smaller eigenvalue ``w^H V_1 w / w^H V_2 w``.

    Returns
    -------
    bool
        False (``out`` untouched) when the pencil is degenerate.
    """
    a1 = v1[0, 0].real
    d1 = v1[1, 1].real
    b1 = v1[0, 1]
    a2 = v2[0, 0].real
    d2 = v2[1, 1].real
    b2 = v2[0, 1]
    # det(V1 - lam V2) = A lam^2 - B lam + C with real coefficients
    ca = a2 * d2 - (b2.real * b2.real + b2.imag * b2.imag)
    cc = a1 * d1 - (b1.real * b1.real + b1.imag * b1.imag)
    cb = a1 * d2 + a2 * d1 - 2.0 * (b1 * np.conj(b2)).real
    if not (ca > 0.0 and cc > 0.0 and cb > 0.0):
        return False
    disc = cb * cb - 4.0 * ca * cc
    if disc <= _DEGENERATE * cb * cb:
        return False
    sq = math.sqrt(disc)
    # the small root as C/q avoids the cancellation of (B - sqrt(disc)) / 2A
    lams = (2.0 * cc / (cb + sq), (cb + sq) / (2.0 * ca))
    for q in range(2):
        lam = lams[q]
        m00 = a1 - lam * a2
        m01 = b1 - lam * b2
        m11 = d1 - lam * d2
        # (V1 - lam V2) u = 0: u is orthogonal to a row; use the larger row
        n0 = m00 * m00 + (m01.real * m01.real + m01.imag * m01.imag)
        n1 = m11 * m11 + (m01.real * m01.real + m01.imag * m01.imag)
        if n0 >= n1:
            u0 = m01
            u1 = complex(-m00, 0.0)
        else:
            u0 = complex(m11, 0.0)
            u1 = -np.conj(m01)
        vq = v1 if q == 0 else v2
        nrm = hermitian_quad(vq, u0, u1)
        if not nrm > 0.0:
            return False
        s = 1.0 / math.sqrt(nrm)
        out[q, 0] = u0 * s
        out[q, 1] = u1 * s
    return True


@njit(cache=True)
def whitened_pair(v1: np.ndarray, v2: np.ndarray, c: np.ndarray, out: np.ndarray) -> bool:
    """Whitened update: W = U C^-1/2, U from the eigenvectors of the whitened V1 - V2.

    With the outputs constrained to be uncorrelated (the seed's PCA-then-
    rotation idea, per bin), ``sum_q w_q^H V_q w_q`` is minimised over the
    unitary U by the eigenvector of ``C^-1/2 (V1 - V2) C^-1/2`` with the
    smaller eigenvalue for source 1 and its orthogonal complement for source 2.

    Parameters
    ----------
    v1, v2 : ndarray, shape (2, 2), complex128
        Hermitian weighted covariances of source 1 and 2.
    c : ndarray, shape (2, 2), complex128
        Hermitian positive-definite covariance of the bin.
    out : ndarray, shape (2, 2), complex128
        ``out[q]`` receives w_q (``y_q = w_q^H x``); then ``W C W^H = I``.

    Returns
    -------
    bool
        False (``out`` untouched) if C is singular or the two eigenvalues tie.
    """
    # symmetric inverse square root of the 2x2 Hermitian covariance
    a = c[0, 0].real
    d = c[1, 1].real
    b = c[0, 1]
    bb = b.real * b.real + b.imag * b.imag
    det = a * d - bb
    if not (det > 0.0 and a > 0.0):
        return False
    sdet = math.sqrt(det)
    t = math.sqrt(a + d + 2.0 * sdet)
    # C^{1/2} = (C + sqrt(det) I) / t; its inverse in closed form
    r00 = (a + sdet) / t
    r11 = (d + sdet) / t
    r01 = b / t
    rdet = r00 * r11 - bb / (t * t)
    q00 = r11 / rdet
    q11 = r00 / rdet
    q01 = -r01 / rdet
    # D = V1~ - V2~ with V~ = Q V Q (Q Hermitian)
    dm = np.empty((2, 2), dtype=np.complex128)
    qm = np.empty((2, 2), dtype=np.complex128)
    qm[0, 0] = q00
    qm[0, 1] = q01
    qm[1, 0] = np.conj(q01)
    qm[1, 1] = q11
    for i in range(2):
        for j in range(2):
            acc = 0j
            for k in range(2):
                for m in range(2):
                    acc += qm[i, k] * (v1[k, m] - v2[k, m]) * qm[m, j]
            dm[i, j] = acc
    # smaller eigenvector of the Hermitian 2x2 dm
    p = dm[0, 0].real
    s = dm[1, 1].real
    e = dm[0, 1]
    half = 0.5 * (p - s)
    rad = math.sqrt(half * half + e.real * e.real + e.imag * e.imag)
    if rad <= 1e-300:
        return False
    lam = 0.5 * (p + s) - rad
    # (dm - lam I) u = 0
    if abs(p - lam) >= abs(s - lam):
        u0 = e
        u1 = complex(lam - p, 0.0)
    else:
        u0 = complex(lam - s, 0.0)
        u1 = np.conj(e)
    nu = math.sqrt(u0.real * u0.real + u0.imag * u0.imag + u1.real * u1.real + u1.imag * u1.imag)
    u0 /= nu
    u1 /= nu
    # second row of the unitary: orthogonal complement
    us = ((u0, u1), (-np.conj(u1), np.conj(u0)))
    for q in range(2):
        z0 = us[q][0]
        z1 = us[q][1]
        # w = Q^H u = Q u
        w0 = qm[0, 0] * z0 + qm[0, 1] * z1
        w1 = qm[1, 0] * z0 + qm[1, 1] * z1
        out[q, 0] = w0
        out[q, 1] = w1
    return True
