"""Each kernel agrees with the plain-numpy reference in tests/naive.py."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep.kernels import ica, moments, whitening
from rtsep.engines.td import TimeDomainEngine

from . import naive


def test_quartic_table_lists_each_distinct_entry_once():
    idx4, full = moments.quartic_index_table(3)
    assert idx4.shape == (15, 4)  # C(3+3, 4)
    assert len({tuple(r) for r in idx4}) == 15
    assert full[2, 0, 1, 0] == full[0, 0, 1, 2]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_running_moments_match_naive_growing_then_forgetting_window(m):
    rng = np.random.default_rng(m)
    x = rng.standard_normal((300, m)) * rng.uniform(0.1, 2, m)
    idx4, full = moments.quartic_index_table(m)
    cov = np.zeros((m, m))
    m4 = np.zeros(idx4.shape[0])
    beta_min = 1 - np.exp(-1 / (0.005 * 16000))  # 80-sample memory: both regimes happen
    for n, row in enumerate(x, start=1):
        moments.accumulate_moments(row, moments.forgetting_weight(n, beta_min), cov, m4, idx4)
    c_ref, t4_ref = naive.running_moments(x, 0.005, 16000)
    cfull = np.zeros((m, m))
    moments.symmetric_from_upper(cov, cfull)
    t4 = np.zeros((m,) * 4)
    moments.expand_quartic(m4, full, t4)
    np.testing.assert_allclose(cfull, c_ref, rtol=1e-10)
    np.testing.assert_allclose(t4, t4_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_jacobi_eigh_matches_numpy_eigh(m):
    rng = np.random.default_rng(10 + m)
    b = rng.standard_normal((m, m))
    c = b @ b.T + np.diag(np.logspace(-8, 0, m))
    w = np.zeros(m)
    u = np.zeros((m, m))
    whitening.jacobi_eigh(c, w, u, np.zeros((m, m)))
    w_ref = np.linalg.eigh(c)[0][::-1]
    np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(u @ np.diag(w) @ u.T, c, atol=1e-11)
    np.testing.assert_allclose(u.T @ u, np.eye(m), atol=1e-12)


def test_symmetric_whitening_matches_naive_and_whitens():
    rng = np.random.default_rng(3)
    b = rng.standard_normal((2, 2))
    c = b @ b.T
    v = np.zeros((2, 2))
    whitening.whitening_matrix(c, 0.0, np.eye(2), v, np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2)),
                               np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)))
    np.testing.assert_allclose(v, naive.symmetric_whitening(c, 0.0), rtol=1e-9)
    np.testing.assert_allclose(v @ c @ v.T, np.eye(2), atol=1e-9)


def test_top_q_whitening_keeps_the_principal_subspace_and_whitens_it():
    rng = np.random.default_rng(4)
    m, q = 4, 2
    b = rng.standard_normal((m, m))
    c = b @ np.diag([10, 5, 0.01, 0.001]) @ b.T
    v_prev = np.eye(q, m)
    v = np.zeros((q, m))
    whitening.whitening_matrix(c, 1e-12, v_prev, v, np.zeros(m), np.zeros((m, m)), np.zeros((m, m)),
                               np.zeros((q, q)), np.zeros((q, q)), np.zeros((q, q)))
    np.testing.assert_allclose(v @ c @ v.T, np.eye(q), atol=1e-8)
    lam, u = np.linalg.eigh(c)
    top = u[:, -q:]
    np.testing.assert_allclose(v @ top @ top.T, v, atol=1e-8)  # rows lie in the top-2 subspace


def test_small_inverse_matches_numpy_and_reports_singular():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 3))
    out = np.zeros((3, 3))
    assert whitening.small_inverse(a, out, np.zeros((3, 3)))
    np.testing.assert_allclose(out, np.linalg.inv(a), rtol=1e-10)
    assert not whitening.small_inverse(np.ones((3, 3)), out, np.zeros((3, 3)))


def test_cumulants_of_demixed_outputs_match_naive_einsum():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((500, 2)) @ np.array([[1, 0.3], [0.2, 1]])
    x[:, 0] = rng.laplace(size=500)
    c, t4 = naive.running_moments(x, 10, 16000)
    d = rng.standard_normal((2, 2))
    out = np.zeros((2, 2, 2, 2))
    ica.mode_product4(t4, d, out, np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)))
    ica.subtract_gaussian_part(out, d @ c @ d.T)
    np.testing.assert_allclose(out, naive.cumulants(t4, c, d), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_pair_angle_finds_the_global_maximum_of_the_squared_kurtosis_contrast(seed):
    rng = np.random.default_rng(seed)
    # cumulants of a rotated pair of independent sources with kurtoses k1, k2
    k1, k2 = rng.uniform(-1.5, 8, 2)
    base = np.zeros((2, 2, 2, 2))
    base[0, 0, 0, 0], base[1, 1, 1, 1] = k1, k2
    th = rng.uniform(-np.pi, np.pi)
    g = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
    k = np.einsum("ai,bj,ck,dl,ijkl->abcd", g, g, g, g, base)
    phi = ica.best_pair_angle(k[0, 0, 0, 0], k[0, 0, 0, 1], k[0, 0, 1, 1], k[0, 1, 1, 1], k[1, 1, 1, 1],
                              True, np.zeros(5))
    j_best = naive.pair_contrast(k, naive.best_angle_grid(k))[0]
    assert naive.pair_contrast(k, phi)[0] == pytest.approx(j_best, rel=1e-6)
    assert -np.pi / 4 < phi <= np.pi / 4


def test_fourier_coefficients_reproduce_the_contrast_exactly():
    rng = np.random.default_rng(7)
    k = rng.standard_normal((2, 2, 2, 2))
    k = (k + k.transpose(1, 0, 2, 3) + k.transpose(2, 1, 0, 3) + k.transpose(3, 1, 2, 0))  # any symmetric-ish tensor
    k = np.einsum("abcd->abcd", k)
    ks = [k[0, 0, 0, 0], k[0, 0, 0, 1], k[0, 0, 1, 1], k[0, 1, 1, 1], k[1, 1, 1, 1]]
    coef = np.zeros(5)
    ica.pair_contrast_coefficients(*ks, coef)
    full = np.zeros((2, 2, 2, 2))
    from itertools import product
    for idx in product(range(2), repeat=4):
        full[idx] = ks[sum(idx)]
    phi = np.linspace(-1, 1, 9)
    u = 4 * phi
    series = coef[0] + coef[1] * np.cos(u) + coef[2] * np.sin(u) + coef[3] * np.cos(2 * u) + coef[4] * np.sin(2 * u)
    np.testing.assert_allclose(series, naive.pair_contrast(full, phi), rtol=1e-10, atol=1e-10)


def test_engine_output_matches_a_naive_numpy_implementation_of_the_same_maths():
    """High-pass, moments, whitening, cumulants and projection back, recomputed with numpy."""
    fs, k = 16000, 32
    rng = np.random.default_rng(8)
    s = np.stack([rng.laplace(size=3200), rng.uniform(-1, 1, 3200)], 1) * 0.1
    x = s @ np.array([[1, 0.5], [0.4, 1]]).T
    eng = TimeDomainEngine(fs, 2, warmup_s=0.0, voice=0, outlier_sigma=0.0)
    v, b = eng.process(x)
    xf = naive.highpass(x, 30.0, fs)
    np.testing.assert_allclose(v + b, xf[:, 0], atol=1e-12)
    # the state after the last update equals the naive statistics of all samples
    c_ref, t4_ref = naive.running_moments(xf, 2.0, fs)
    cfull = np.zeros((2, 2))
    moments.symmetric_from_upper(eng.cov, cfull)
    np.testing.assert_allclose(cfull, c_ref, rtol=1e-9)
    np.testing.assert_allclose(eng.v, naive.symmetric_whitening(c_ref, 1e-6), rtol=1e-8)
    d = eng.rot @ eng.v
    kd = naive.cumulants(t4_ref, c_ref, d)
    # the rotation is (near) a stationary point of the contrast: rotating by ±δ does not improve it
    j0 = naive.pair_contrast(kd, np.array([0.0, 1e-3, -1e-3]))
    assert j0[0] >= j0[1:].max() - 1e-9 * abs(j0[0])
    # projection back: voice weights are row k of D scaled by (D⁻¹)[ref, k]
    a = np.linalg.inv(d)
    np.testing.assert_allclose(eng.w[0], a[0, 0] * d[0], rtol=1e-7)
    # the voice weights glide to w[voice] over the K samples after each update (no zipper noise)
    assert eng.counters[0].samples % k == 0
    np.testing.assert_allclose(eng.wv + k * eng.dv, eng.w[eng.lab[0]], rtol=1e-9, atol=1e-12)
